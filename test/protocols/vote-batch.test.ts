import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { signerOf } from '../../protocols/task/ed25519.js'
import { BatchSigner, DEFAULT_VOTE_SIGN_BATCH_MAX, MAX_SIGNATURE_CHARS, MAX_SIGN_BATCH, signBatch, verifySignature } from '../../protocols/task/vote-batch.js'

const key = await generateKeyPair('Ed25519')
const peer = peerIdFromPrivateKey(key).toString()
const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const sign = signerOf(key)
const statements = (n: number, tag = 's'): Uint8Array[] => Array.from({ length: n }, (_, i) => Buffer.from(`${tag}-${i}`))

/** A signer that counts its signatures, and fails while `failing` is set. */
function countingSigner (): { sign: (m: Uint8Array) => Uint8Array, calls: number, failing: boolean } {
  const s = { calls: 0, failing: false, sign: (m: Uint8Array): Uint8Array => { s.calls++; if (s.failing) throw new Error('the key is gone'); return sign(m) as Uint8Array } }
  return s
}

describe('votes signed in batches', () => {
  it('signs a batch of any size with one signature, and each vote checks against its own statement only', async () => {
    for (const n of [2, 3, 5, 8, 13, MAX_SIGN_BATCH]) {
      const signer = countingSigner()
      const batch = statements(n)
      const sigs = await signBatch(batch, signer.sign)
      expect(signer.calls).toBe(1)
      expect(new Set(sigs).size).toBe(n)
      sigs.forEach((sig, i) => {
        expect(sig.length).toBeLessThanOrEqual(MAX_SIGNATURE_CHARS)
        expect(verifySignature(peer, batch[i]!, sig)).toBe(true)
        // another vote's statement, another signer, a statement never signed
        expect(verifySignature(peer, batch[(i + 1) % n]!, sig)).toBe(false)
        expect(verifySignature(other, batch[i]!, sig)).toBe(false)
        expect(verifySignature(peer, Buffer.from('never signed'), sig)).toBe(false)
      })
    }
  })

  it('signs a lone statement plainly, as every vote was signed before batches, and takes it in one spelling only', async () => {
    const [sig] = await signBatch(statements(1), sign)
    expect(sig).not.toContain('.')
    expect(Buffer.from(sig!, 'base64')).toHaveLength(64)
    expect(verifySignature(peer, statements(1)[0]!, sig!)).toBe(true)
    for (const other of [sig!.replace(/=+$/, ''), `${sig!}\n`, Buffer.from(sig!, 'base64').toString('base64url')]) expect(verifySignature(peer, statements(1)[0]!, other)).toBe(false)
  })

  it('takes a batch limit that is not a number as the default, and still answers every statement', async () => {
    const signer = countingSigner()
    const batcher = new BatchSigner(signer.sign, Number.NaN)
    const batch = statements(20)
    const sigs = await Promise.all(batch.map(async s => await batcher.signStatement(s)))
    expect(signer.calls).toBe(Math.ceil(20 / DEFAULT_VOTE_SIGN_BATCH_MAX))
    sigs.forEach((sig, i) => { expect(verifySignature(peer, batch[i]!, sig)).toBe(true) })
  })

  it('refuses a batched signature whose count, index, proof or signature was changed', async () => {
    const batch = statements(6)
    const sigs = await signBatch(batch, sign)
    const sig = sigs[2]!
    const [tag, count, index, signature, ...proof] = sig.split('.')
    const forged = (parts: Array<string | undefined>): string => parts.join('.')
    const flip = (b64: string): string => { const b = Buffer.from(b64, 'base64'); b[0]! ^= 1; return b.toString('base64') }
    const bad = [
      forged([tag, '7', index, signature, ...proof]),
      forged([tag, '5', index, signature, ...proof]),
      forged([tag, count, '3', signature, ...proof]),
      forged([tag, count, '6', signature, ...proof]),
      forged([tag, count, index, flip(signature!), ...proof]),
      forged([tag, count, index, signature, flip(proof[0]!), ...proof.slice(1)]),
      forged([tag, count, index, signature, ...proof.slice(1)]),
      forged([tag, count, index, signature, ...proof, proof[0]]),
      forged([tag, count, index, signature, ...proof.slice(0, -1), 'AAAA']),
      forged([tag, '1', '0', signature]),
      forged([tag, '99999', index, signature, ...proof]),
      forged([tag, '06', index, signature, ...proof]),
      'b1.', 'b1.6', 'b1.6.2', 'not base64 at all',
      // other spellings of the same bytes, which Buffer.from would take
      forged([tag, count, index, signature!.replace(/=+$/, ''), ...proof]),
      forged([tag, count, index, ` ${signature!}`, ...proof]),
      forged([tag, count, index, signature, `${proof[0]!}=`, ...proof.slice(1)]),
      forged([tag, count, index, signature, Buffer.from(proof[0]!, 'base64').toString('base64url'), ...proof.slice(1)])
    ]
    expect(verifySignature(peer, batch[2]!, sig)).toBe(true)
    for (const b of bad) expect(verifySignature(peer, batch[2]!, b), b).toBe(false)
    // the other votes of the batch still check: a bad one among them changes nothing for them
    sigs.forEach((s, i) => { expect(verifySignature(peer, batch[i]!, s)).toBe(true) })
  })

  it('signs what one turn of the event loop asks for together, and each turn alone', async () => {
    const signer = countingSigner()
    const batcher = new BatchSigner(signer.sign, 16)
    const first = statements(10, 'first')
    const sigs = await Promise.all(first.map(async s => await batcher.signStatement(s)))
    expect(signer.calls).toBe(1)
    sigs.forEach((sig, i) => { expect(verifySignature(peer, first[i]!, sig)).toBe(true) })
    // a lone statement in a later turn: its own plain signature
    const lone = await batcher.signStatement(Buffer.from('lone'))
    expect(signer.calls).toBe(2)
    expect(lone).not.toContain('.')
    expect(verifySignature(peer, Buffer.from('lone'), lone)).toBe(true)
  })

  it('splits a turn past the batch limit into several signatures, and a limit of 1 signs each alone', async () => {
    const signer = countingSigner()
    const batch = statements(10)
    const sigs = await Promise.all(batch.map(async s => await new BatchSigner(signer.sign, 4).signStatement(s)))
    expect(signer.calls).toBe(10)
    const shared = new BatchSigner(signer.sign, 4)
    const together = await Promise.all(batch.map(async s => await shared.signStatement(s)))
    expect(signer.calls).toBe(10 + 3)
    together.forEach((sig, i) => { expect(verifySignature(peer, batch[i]!, sig)).toBe(true) })
    const single = new BatchSigner(signer.sign, 1)
    const alone = await Promise.all(batch.map(async s => await single.signStatement(s)))
    expect(signer.calls).toBe(10 + 3 + 10)
    alone.forEach((sig, i) => { expect(sig).not.toContain('.'); expect(verifySignature(peer, batch[i]!, sig)).toBe(true) })
    expect(sigs.every((sig, i) => verifySignature(peer, batch[i]!, sig))).toBe(true)
  })

  it('fails every vote of a batch whose signature failed, and signs the next turn', async () => {
    const signer = countingSigner()
    const batcher = new BatchSigner(signer.sign, 16)
    signer.failing = true
    const failed = await Promise.allSettled(statements(3).map(async s => await batcher.signStatement(s)))
    expect(failed.map(f => f.status)).toEqual(['rejected', 'rejected', 'rejected'])
    signer.failing = false
    const again = await Promise.all(statements(3).map(async s => await batcher.signStatement(s)))
    again.forEach((sig, i) => { expect(verifySignature(peer, statements(3)[i]!, sig)).toBe(true) })
  })
})
