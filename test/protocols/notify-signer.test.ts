import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { recordsHandler } from '../../protocols/records/index.js'
import { Replica } from '../../protocols/replica/index.js'
import { MemoryReplicaStore, isValidCertificate, makeTask, resultHash, signatureStats } from '../../protocols/task/index.js'
import { certBy, makePeer } from '../helpers/peers.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { Peer } from '../helpers/peers.js'

/*
 * A member that tells a waiting node of a final state sends the certificate its own vote is in,
 * over a connection that proves who it is: that vote is not checked again there. A non-member
 * submitter checked both votes of every task it was told of.
 */

const log = logger('test:notify-signer')
let A: Peer, B: Peer, C: Peer, W: Peer
beforeAll(async () => { [A, B, C, W] = await Promise.all([makePeer(), makePeer(), makePeer(), makePeer()]) })

async function notifyFrom (sender: Peer, signers: Peer[]): Promise<{ ok: () => boolean, told: TaskNotice[] }> {
  const task = makeTask({ capability: 'echo', input: { n: Math.random() }, submitter: W.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 60_000 })
  const result = { n: 1 }
  const cert = certBy(task.id, { state: 'completed', claimId: 'c1', resultHash: resultHash(result) }, signers)
  const replica = new Replica(new MemoryReplicaStore(), { me: W.id, sign: bytes => W.key.sign(bytes), log })
  const told: TaskNotice[] = []
  const handle = recordsHandler(replica, { badRequests: 0 }, { sharedWith: () => [], applyNotices: n => { told.push(...n) } })
  const notice = { kind: 'notice', from: sender.id, at: Date.now(), id: task.id, capability: 'echo', event: 'completed', generation: 0, claimId: 'c1', peer: sender.id, result, resultSize: 5, cert }
  expect(await handle(JSON.parse(JSON.stringify({ op: 'notify', notices: [notice] })), peerIdFromString(sender.id))).toEqual({ status: 'OK' })
  return { ok: () => isValidCertificate(cert, [A.id, B.id, C.id]), told }
}

describe('a certificate told by one of its signers', () => {
  it('costs a check of the other signers\' votes only', async () => {
    const { ok, told } = await notifyFrom(A, [A, B])
    expect(told.map(n => n.from)).toEqual([A.id])
    const before = signatureStats.checked
    expect(ok()).toBe(true)
    expect(signatureStats.checked - before).toBe(1)
  })

  it('is checked in full when its sender signed none of it', async () => {
    const { ok } = await notifyFrom(C, [A, B])
    const before = signatureStats.checked
    expect(ok()).toBe(true)
    expect(signatureStats.checked - before).toBe(2)
  })

  it('is refused still when another signer\'s vote is bad', async () => {
    const { ok } = await notifyFrom(A, [A, W])
    // W is no member: its vote does not count, and A's alone is no majority of three
    expect(ok()).toBe(false)
  })
})
