import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { atTurnWrites, beforeTurnWrites } from '../../protocols/end-of-turn.js'
import { signerOf } from '../../protocols/task/ed25519.js'
import { BatchSigner } from '../../protocols/task/vote-batch.js'

describe('the end of a turn, in two steps', () => {
  it('runs a write made once a signature let its request go on in the same turn, not the next', async () => {
    const order: string[] = []
    await new Promise<void>(resolve => {
      beforeTurnWrites(() => {
        order.push('sign')
        // queued while immediates run: the next turn
        setImmediate(() => { order.push('next turn'); resolve() })
        // the request the signature resumes, a few microtasks on, writes
        void Promise.resolve().then(async () => { await null }).then(() => { atTurnWrites(() => { order.push('write') }) })
      })
    })
    expect(order).toEqual(['sign', 'write', 'next turn'])
  })

  it('gives a write that came before the signatures of its turn the same step, after them', async () => {
    const order: string[] = []
    atTurnWrites(() => { order.push('early write') })
    beforeTurnWrites(() => {
      order.push('sign')
      setImmediate(() => { order.push('next turn') })
      atTurnWrites(() => { order.push('write after the sign') })
    })
    await new Promise(resolve => setImmediate(resolve))
    await new Promise(resolve => setImmediate(resolve))
    // the early write's step came first in the queue; the one after the sign still ran this turn
    expect(order).toEqual(['early write', 'sign', 'write after the sign', 'next turn'])
  })

  it('lets a vote signed in a batch reach the turn\'s writes', async () => {
    const signer = new BatchSigner(signerOf(await generateKeyPair('Ed25519')), 16)
    const order: string[] = []
    await Promise.all([1, 2, 3].map(async i => {
      await signer.signStatement(Buffer.from(`s${i}`))
      if (i === 1) setImmediate(() => { order.push('next turn') })
      atTurnWrites(() => { order.push(`write ${i}`) })
    }))
    await new Promise(resolve => setImmediate(resolve))
    await new Promise(resolve => setImmediate(resolve))
    expect(order).toEqual(['write 1', 'write 2', 'write 3', 'next turn'])
  })
})
