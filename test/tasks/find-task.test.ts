import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { findTask } from '../../node/tasks/find-task.js'
import { Replica } from '../../protocols/replica/index.js'
import { MemoryReplicaStore, finalOf, makeTask, newRecord, resultHash } from '../../protocols/task/index.js'
import { certBy, makePeer } from '../helpers/peers.js'
import type { TaskComponents } from '../../node/tasks/components.js'
import type { StoredResult, TaskRecord } from '../../protocols/task/index.js'
import type { Peer } from '../helpers/peers.js'

/*
 * A read of a task from its placement, with the members' answers as peers would send them: one
 * member still holds the result of a claim that lost (its vote, before the commit reached it),
 * another the certified record and the result the certificate names.
 */
describe('reading a task from its placement', () => {
  let A: Peer, B: Peer, C: Peer, reader: Peer
  beforeAll(async () => { [A, B, C, reader] = await Promise.all([makePeer(), makePeer(), makePeer(), makePeer()]) })

  it('answers with the result the certificate names, whichever member answered first with another claim\'s', async () => {
    const placement = { epoch: 0, members: [A.id, B.id, C.id] }
    const task = makeTask({ capability: 'echo', input: 'x', submitter: reader.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 3_600_000 })
    const running = newRecord(task, placement)
    const won: StoredResult = { claimId: 'won', peer: B.id, value: { n: 1 }, size: 7, at: Date.now() }
    const lost: StoredResult = { claimId: 'lost', peer: C.id, value: { n: 1 }, size: 7, at: Date.now() }
    const cert = certBy(task.id, { state: 'completed', claimId: 'won', resultHash: resultHash(won.value) }, [A, B])
    const final: TaskRecord = { ...running, final: finalOf(cert, Date.now(), { peer: B.id, size: 7 }) }
    // in placement order: A, which voted for the losing claim and has not taken the commit yet, first
    const answers = new Map<string, unknown>([
      [A.id, { status: 'OK', record: running, result: lost }],
      [B.id, { status: 'OK', record: final, result: won }]
    ])
    const replica = new Replica(new MemoryReplicaStore(), { me: reader.id, sign: bytes => reader.key.sign(bytes), log: logger('test:find-task') })
    const c = {
      peerId: peerIdFromString(reader.id),
      replica,
      replicaSets: { peerId: (id: string) => peerIdFromString(id) },
      membership: { choose: () => placement },
      records: async (to: { toString: () => string }) => {
        const answer = answers.get(to.toString())
        if (answer === undefined) throw new Error('unreachable')
        return JSON.parse(JSON.stringify(answer))
      }
    } as unknown as TaskComponents
    const view = await findTask(c, task.id)
    expect(view?.record.final?.cert.value.claimId).toBe('won')
    expect(view?.result).toMatchObject({ claimId: 'won', value: { n: 1 } })
    // and this node's copy keeps that one
    expect((await replica.get(task.id)).result?.claimId).toBe('won')
  })

  /** The components a read uses, with each member's answer given by `answer` (undefined: unreachable). */
  function components (placement: { epoch: number, members: string[] }, answer: (member: string) => Promise<unknown> | undefined): TaskComponents {
    const replica = new Replica(new MemoryReplicaStore(), { me: reader.id, sign: bytes => reader.key.sign(bytes), log: logger('test:find-task') })
    return {
      peerId: peerIdFromString(reader.id),
      replica,
      replicaSets: { peerId: (id: string) => peerIdFromString(id) },
      membership: { choose: () => placement },
      records: async (to: { toString: () => string }) => {
        const a = answer(to.toString())
        if (a === undefined) throw new Error('unreachable')
        return JSON.parse(JSON.stringify(await a))
      }
    } as unknown as TaskComponents
  }

  it('answers once a majority of the placement has, without waiting on a member that never answers (paused)', async () => {
    const placement = { epoch: 0, members: [A.id, B.id, C.id] }
    const task = makeTask({ capability: 'echo', input: 'paused', submitter: reader.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 3_600_000 })
    const record = newRecord(task, placement)
    const view = await findTask(components(placement, m => m === C.id ? new Promise(() => {}) : Promise.resolve({ status: 'OK', record })), task.id)
    expect(view?.record.task.id).toBe(task.id)
  }, 20_000)

  it('waits in a later round for a member an earlier round left unanswered: a majority of the placement the copies name', async () => {
    const [D] = await Promise.all([makePeer()])
    const before = { epoch: 0, members: [A.id, B.id, C.id] }
    const after = { epoch: 1, members: [A.id, B.id, D.id] }
    const task = makeTask({ capability: 'echo', input: 'moved', submitter: reader.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 3_600_000 })
    const old = newRecord(task, before)
    const moved: TaskRecord = { ...old, placement: after, previous: [before] }
    // B and D, a majority of epoch 1, hold a journal step; A answers at once without it, C (moved out) with epoch 0
    const stepped: TaskRecord = { ...moved, journal: { 'step-1': 'done' } }
    const view = await findTask(components(before, m => {
      if (m === A.id) return Promise.resolve({ status: 'OK', record: moved })
      if (m === C.id) return Promise.resolve({ status: 'OK', record: old })
      if (m === B.id) return new Promise(resolve => setTimeout(() => { resolve({ status: 'OK', record: stepped }) }, 100))
      return undefined
    }), task.id)
    expect(view?.record.placement).toEqual(after)
    expect(view?.record.journal?.['step-1']).toBe('done')
  })

  it('answers from the placement on a member whose own state of the task is unreadable, keeping nothing', async () => {
    const placement = { epoch: 0, members: [reader.id, A.id, B.id] }
    const task = makeTask({ capability: 'echo', input: 'y', submitter: reader.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 3_600_000 })
    const won: StoredResult = { claimId: 'won', peer: A.id, value: 'done', size: 6, at: Date.now() }
    const cert = certBy(task.id, { state: 'completed', claimId: 'won', resultHash: resultHash(won.value) }, [A, B])
    const final: TaskRecord = { ...newRecord(task, placement), final: finalOf(cert, Date.now(), { peer: A.id, size: 6 }) }
    // its record unreadable on disk, as a real store reports it (test/tasks/damaged-state.test.ts damages one)
    const store = Object.assign(new MemoryReplicaStore(), { isDamaged: (id: string) => id === task.id })
    const replica = new Replica(store, { me: reader.id, sign: bytes => reader.key.sign(bytes), log: logger('test:find-task') })
    const c = {
      peerId: peerIdFromString(reader.id),
      replica,
      replicaSets: { peerId: (id: string) => peerIdFromString(id) },
      membership: { choose: () => placement },
      records: async (to: { toString: () => string }) => {
        if (to.toString() === reader.id) return { status: 'OK' }
        return JSON.parse(JSON.stringify({ status: 'OK', record: final, result: won }))
      }
    } as unknown as TaskComponents
    const view = await findTask(c, task.id)
    expect(view?.record.final?.state).toBe('completed')
    expect(view?.result?.value).toBe('done')
    expect(replica.stats.damagedRefusals).toBe(1)
    expect(await replica.get(task.id)).toEqual({})
  })
})
