import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it, vi } from 'vitest'
import { signerOf, verifyBy } from '../../protocols/task/ed25519.js'

// node:crypto's verify, counted: a check that held once is not made again
const checks = vi.hoisted(() => ({ made: 0 }))
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>()
  const verify = (...args: Parameters<typeof crypto.verify>): boolean => { checks.made++; return (crypto.verify as (...a: unknown[]) => boolean)(...args) }
  return { ...crypto, default: { ...crypto, verify }, verify }
})

const key = await generateKeyPair('Ed25519')
const peer = peerIdFromPrivateKey(key).toString()
const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const sign = signerOf(key)

/** verifyBy's answer and how many signature checks it made. */
function check (by: string, message: Uint8Array, signature: Uint8Array): { good: boolean, made: number } {
  const before = checks.made
  const good = verifyBy(by, message, signature)
  return { good, made: checks.made - before }
}

describe('Ed25519 checks', () => {
  it('checks a signature once: the same signer, message and signature again cost no check', () => {
    const message = Buffer.from(`once ${Math.random()}`)
    const sig = sign(message) as Uint8Array
    expect(check(peer, message, sig)).toEqual({ good: true, made: 1 })
    // another copy of the same bytes, as another node of the process reads them
    expect(check(peer, Buffer.from(message), Buffer.from(sig))).toEqual({ good: true, made: 0 })
  })

  it('answers a changed message, signature or signer by a check of its own, and does not keep a failed one', () => {
    const message = Buffer.from(`kept ${Math.random()}`)
    const sig = sign(message) as Uint8Array
    expect(check(peer, message, sig).good).toBe(true)
    const changed = Buffer.from(message)
    changed[0] = (changed[0] ?? 0) ^ 1
    expect(check(peer, changed, sig)).toEqual({ good: false, made: 1 })
    const badSig = Buffer.from(sig)
    badSig[10] = (badSig[10] ?? 0) ^ 1
    expect(check(peer, message, badSig)).toEqual({ good: false, made: 1 })
    expect(check(other, message, sig)).toEqual({ good: false, made: 1 })
    // a failed check is made again, and fails again
    expect(check(peer, changed, sig)).toEqual({ good: false, made: 1 })
  })

  it('takes views into larger buffers as their own bytes only, as a gossip envelope passes them', () => {
    const message = Buffer.from(`view ${Math.random()}`)
    const sig = sign(message) as Uint8Array
    // [version][message][signature], as protocols/gossip/envelope.ts reads one
    const envelope = Buffer.concat([Buffer.from([1]), message, sig])
    const view = { message: envelope.subarray(1, 1 + message.byteLength), sig: envelope.subarray(1 + message.byteLength) }
    expect(check(peer, view.message, view.sig)).toEqual({ good: true, made: 1 })
    expect(check(peer, message, sig)).toEqual({ good: true, made: 0 })
    // the same bytes around another message: the view's message differs, so does the answer
    const other = Buffer.concat([Buffer.from([1]), Buffer.from(message).fill(0x41), sig])
    expect(check(peer, other.subarray(1, 1 + message.byteLength), other.subarray(1 + message.byteLength))).toEqual({ good: false, made: 1 })
  })

  it('refuses a signature of the wrong length or a signer that is no Ed25519 peer id without a check', () => {
    const message = Buffer.from('short')
    const sig = sign(message) as Uint8Array
    expect(check(peer, message, sig.subarray(0, 63))).toEqual({ good: false, made: 0 })
    expect(check('not a peer id', message, sig)).toEqual({ good: false, made: 0 })
  })
})
