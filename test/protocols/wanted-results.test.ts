import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { LevelReplicaStore } from '../../node/store/replica-store.js'
import { Replica } from '../../protocols/replica/index.js'
import { MemoryReplicaStore, finalOf, makeTask, newRecord, resultHash } from '../../protocols/task/index.js'
import { certBy, makePeer } from '../helpers/peers.js'
import type { StoredResult, TaskRecord } from '../../protocols/task/index.js'
import type { Peer } from '../helpers/peers.js'
import { useTmpDirs } from '../helpers/tmp.js'

describe('completed copies held without their result', () => {
  const tmp = useTmpDirs()

  it('are wanted until the certified result is stored, a losing claim\'s result counting for nothing', async () => {
    const [A, B, C, outside] = await Promise.all([makePeer(), makePeer(), makePeer(), makePeer()])
    const task = makeTask({ capability: 'echo', input: 'x', submitter: A.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 3_600_000 })
    const won: StoredResult = { claimId: 'won', peer: A.id, value: { n: 1 }, size: 7, at: Date.now() }
    const lost: StoredResult = { claimId: 'lost', peer: C.id, value: { n: 2 }, size: 7, at: Date.now() }
    const running = newRecord(task, { epoch: 0, members: [A.id, B.id, C.id] })
    const cert = certBy(task.id, { state: 'completed', claimId: 'won', resultHash: resultHash(won.value) }, [A, C])
    const final: TaskRecord = { ...running, final: finalOf(cert, Date.now(), { peer: A.id, size: 7 }) }
    const replica = (p: Peer): Replica => new Replica(new MemoryReplicaStore(), { me: p.id, sign: bytes => p.key.sign(bytes), log: logger('test:wanted-results') })
    const b = replica(B)
    // B kept the losing claim's result, then took the certified record, which names another
    await b.put(running, lost)
    expect(b.wantedResults(10)).toEqual([])
    await b.put(final)
    expect((await b.get(task.id)).result).toBeUndefined()
    expect(b.wantedResults(10)).toEqual([task.id])
    expect(b.wantedResults(0)).toEqual([])
    // a second one: a round of one asks each in turn, so one that no member can give does not take every round
    const other = makeTask({ capability: 'echo', input: 'y', submitter: A.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 3_600_000 })
    const otherCert = certBy(other.id, { state: 'completed', claimId: 'won', resultHash: resultHash(won.value) }, [A, C])
    await b.put({ ...newRecord(other, { epoch: 0, members: [A.id, B.id, C.id] }), final: finalOf(otherCert, Date.now(), { peer: A.id, size: 7 }) })
    const turns = [b.wantedResults(1), b.wantedResults(1), b.wantedResults(1)].flat()
    expect(new Set(turns)).toEqual(new Set([task.id, other.id]))
    expect(turns[0]).not.toBe(turns[1])
    await b.put(final, won)
    expect((await b.get(task.id)).result?.value).toEqual({ n: 1 })
    expect(b.wantedResults(10)).toEqual([other.id])
    // a copy kept outside the placement is nobody's to repair
    const o = replica(outside)
    await o.put(final)
    expect(o.wantedResults(10)).toEqual([])
  })

  it('are found again at a start, from what LevelDB holds: a completed copy stored without any result', async () => {
    const [A, B, C, outside] = await Promise.all([makePeer(), makePeer(), makePeer(), makePeer()])
    const won = (input: string): StoredResult => ({ claimId: 'won', peer: A.id, value: { input }, size: 9, at: Date.now() })
    const members = { epoch: 0, members: [A.id, B.id, C.id] }
    const taskOf = (input: string): ReturnType<typeof makeTask> => makeTask({ capability: 'echo', input, submitter: A.id, maxAttempts: 3, timeoutMs: 1_000, deadline: Date.now() + 3_600_000 })
    // completed copies, some with their result and some without, ids in no particular order
    const finals = Array.from({ length: 12 }, (_, i) => {
      const task = taskOf(`t${i}`)
      const cert = certBy(task.id, { state: 'completed', claimId: 'won', resultHash: resultHash(won(`t${i}`).value) }, [A, C])
      return { i, record: { ...newRecord(task, members), final: finalOf(cert, Date.now(), { peer: A.id, size: 9 }) } satisfies TaskRecord }
    })
    // unfinished and dead copies hold no result, and want none
    const pending = Array.from({ length: 4 }, (_, i) => newRecord(taskOf(`p${i}`), members))
    const dead = Array.from({ length: 2 }, (_, i) => {
      const task = taskOf(`d${i}`)
      return { ...newRecord(task, members), final: finalOf(certBy(task.id, { state: 'dead' }, [A, C]), Date.now()) } satisfies TaskRecord
    })
    const path = join(await tmp(), 'db')
    const opened: Store[] = []
    const open = async (me: Peer): Promise<Replica> => {
      const store = await Store.open({ path })
      opened.push(store)
      const replica = new Replica(new LevelReplicaStore(store), { me: me.id, sign: bytes => me.key.sign(bytes), log: logger('test:wanted-results') })
      await replica.load()
      return replica
    }
    const close = async (): Promise<void> => { for (const store of opened.splice(0)) await store.close() }
    try {
      const first = await open(B)
      for (const { i, record } of finals) await first.put(record, i % 3 === 0 ? undefined : won(`t${i}`))
      for (const record of [...pending, ...dead]) await first.put(record)
      // results whose records are gone (as retention may leave them between its two writes): many
      // between two records, so the start's walk of the result ids must skip runs of them
      const orphans = Array.from({ length: 40 }, (_, i) => taskOf(`o${i}`).id)
      await opened[0]!.write(orphans.map(id => opened[0]!.results.putOp(id, won(id))), { sync: true })
      const missing = finals.filter(({ i }) => i % 3 === 0).map(({ record }) => record.task.id).sort()
      expect([...first.wantedResults(100)].sort()).toEqual(missing)
      await close()
      // a restart: nothing in memory, the disk alone tells which copies lack their result
      const again = await open(B)
      expect([...again.wantedResults(100)].sort()).toEqual(missing)
      expect(await again.lacksResult(missing[0]!)).toBe(true)
      // stored since, by any path (here one the replica did not see): wanted no more, so no round
      // asks for it again
      const stored = finals.find(({ record }) => record.task.id === missing[0])!
      await opened[0]!.write([opened[0]!.results.putOp(stored.record.task.id, won(`t${stored.i}`))], { sync: true })
      expect(await again.lacksResult(missing[0]!)).toBe(false)
      expect(again.wantedResults(100)).not.toContain(missing[0])
      await close()
      // a node that keeps these copies outside their placement has nothing to repair
      const other = await open(outside)
      expect(other.wantedResults(100)).toEqual([])
    } finally {
      await close()
    }
  })
})
