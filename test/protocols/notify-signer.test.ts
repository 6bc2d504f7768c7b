import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { recordsHandler } from '../../protocols/records/index.js'
import { Replica } from '../../protocols/replica/index.js'
import { MemoryReplicaStore, finalOf, isValidCertificate, makeTask, newRecord, resultHash, signatureStats } from '../../protocols/task/index.js'
import { certBy, makePeer } from '../helpers/peers.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { Certificate, TaskRecord } from '../../protocols/task/index.js'
import type { Peer } from '../helpers/peers.js'

/*
 * A member that tells a waiting node of a final state sends the certificate its own vote is in,
 * over a connection that proves who it is: the node keeps the final in its copy with that vote
 * taken on the sender's word, for that one put, and checks the others. A submitter outside the
 * placement checked both votes of every task it was told of.
 */

const log = logger('test:notify-signer')
let A: Peer, B: Peer, C: Peer, W: Peer
beforeAll(async () => { [A, B, C, W] = await Promise.all([makePeer(), makePeer(), makePeer(), makePeer()]) })

const RESULT = { n: 1 }

/** The waiting node W's replica: outside the placement of every task here. */
const waiterReplica = (): Replica => new Replica(new MemoryReplicaStore(), { me: W.id, sign: bytes => W.key.sign(bytes), log })

/** A waiting node's unfinished copy of a task placed on A, B, C, and a final of it certified by `signers`. */
async function waitingCopy (signers: Peer[], forge?: Peer): Promise<{ replica: Replica, cert: Certificate, final: TaskRecord }> {
  const task = makeTask({ capability: 'echo', input: { n: Math.random() }, submitter: W.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 60_000 })
  const record = newRecord(task, { epoch: 0, members: [A.id, B.id, C.id] })
  const replica = waiterReplica()
  await replica.put(record)
  const cert = certBy(task.id, { state: 'completed', claimId: 'c1', resultHash: resultHash(RESULT) }, signers)
  if (forge !== undefined) for (const v of cert.votes) if (v.peer === forge.id) v.sig = Buffer.alloc(64, 7).toString('base64')
  const final = { ...record, final: finalOf(cert, Date.now(), { peer: A.id, size: 7 }), updatedAt: Date.now() }
  return { replica, cert, final }
}

/** Puts the final into the copy, with `signer`'s own vote taken on its word when given: whether it was kept, and the signature checks it took. */
async function keep (copy: { replica: Replica, final: TaskRecord }, signer?: Peer): Promise<{ kept: boolean, checks: number }> {
  const before = signatureStats.checked
  const result = { claimId: 'c1', peer: A.id, value: RESULT, size: 7, at: 1 }
  const kept = await copy.replica.put(copy.final, result, signer === undefined ? undefined : peer => peer === signer.id)
  return { kept: kept?.final !== undefined, checks: signatureStats.checked - before }
}

describe('a certificate told by one of its signers', () => {
  it('is kept with one signature check, the other signer\'s, where it took two', async () => {
    expect(await keep(await waitingCopy([A, B]), A)).toEqual({ kept: true, checks: 1 })
    // the same put without the sender's word checks both (the other one is remembered by now)
    expect(await keep(await waitingCopy([A, B]))).toEqual({ kept: true, checks: 2 })
  })

  it('takes the word for that put only: a forged signature of the sender is not remembered as checked', async () => {
    const told = await waitingCopy([A, B], A)
    expect((await keep(told, A)).kept).toBe(true)
    // anyone else's check, or this node's own later, finds the forgery
    expect(isValidCertificate(told.cert, [A.id, B.id, C.id])).toBe(false)
    expect((await keep(await waitingCopy([A, B], A))).kept).toBe(false)
  })

  it('gives no word to a sender whose vote is not in it, nor lets it make a majority', async () => {
    expect(await keep(await waitingCopy([A, B]), C)).toEqual({ kept: true, checks: 2 })
    // W's vote does not count (no member), and A's alone is no majority of three
    expect((await keep(await waitingCopy([A, W]), A)).kept).toBe(false)
  })

  it('reaches the node as notices with the sender the connection proves, whatever they say', async () => {
    const { cert } = await waitingCopy([A, B])
    const replica = waiterReplica()
    const told: Array<[TaskNotice[], string]> = []
    const handle = recordsHandler(replica, { badRequests: 0 }, { sharedWith: () => [], applyNotices: (n, sender) => { told.push([n, sender]) } })
    const notice = { kind: 'notice', from: B.id, at: Date.now(), id: cert.id, capability: 'echo', event: 'completed', generation: 0, claimId: 'c1', peer: A.id, result: RESULT, resultSize: 7, cert }
    expect(await handle(JSON.parse(JSON.stringify({ op: 'notify', notices: [notice] })), peerIdFromString(A.id))).toEqual({ status: 'OK' })
    expect(told.map(([n, sender]) => [n.map(x => x.from), sender])).toEqual([[[A.id], A.id]])
  })
})
