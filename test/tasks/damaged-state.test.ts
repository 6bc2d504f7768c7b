import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { Level } from 'level'
import { beforeAll, describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { LevelReplicaStore } from '../../node/store/replica-store.js'
import { DAMAGED_REASON, Replica } from '../../protocols/replica/replica.js'
import { makeTask, newRecord, resultHash } from '../../protocols/task/index.js'
import type { LeaseRequest, LeaseResponse } from '../../protocols/lease/index.js'
import type { TaskRecord } from '../../protocols/task/index.js'
import { makePeer } from '../helpers/peers.js'
import type { Peer } from '../helpers/peers.js'
import { useTmpDirs } from '../helpers/tmp.js'

/*
 * A member whose lease state or record for a task is unreadable on disk must not act as if it
 * held nothing: the lost lease state may hold its vote and a live grant. Real LevelDB on disk,
 * damaged between a close and a reopen, as a crash or a bad disk would leave it.
 */

const LEASE_MS = 60_000
const log = logger('test:damaged-state')
const peers: Peer[] = []
beforeAll(async () => { peers.push(...await Promise.all([0, 1, 2].map(makePeer))) })

interface Opened { store: Store, replica: Replica }

async function open (path: string, me: Peer): Promise<Opened> {
  const store = await Store.open({ path })
  const replica = new Replica(new LevelReplicaStore(store), { me: me.id, sign: bytes => me.key.sign(bytes), log })
  await replica.load()
  return { store, replica }
}

/** A request as the wire would bring it (JSON), answered by the member. */
async function ask (replica: Replica, from: Peer, req: LeaseRequest): Promise<LeaseResponse> {
  return replica.handleLease(from.id, JSON.parse(JSON.stringify(req)))
}

function newTask (input: string): TaskRecord {
  const [a, b, c] = peers as [Peer, Peer, Peer]
  const task = makeTask({ capability: 'echo', input, submitter: b.id, maxAttempts: 3, timeoutMs: 60_000, deadline: Date.now() + 3_600_000 })
  return newRecord(task, { epoch: 0, members: [a.id, b.id, c.id] })
}

/** B claims the task on member A (bringing its record) and A votes for B's result. */
async function grantAndVote (replica: Replica, record: TaskRecord): Promise<void> {
  const b = peers[1] as Peer
  const id = record.task.id
  const grant = await ask(replica, b, { op: 'acquire', id, epoch: 0, claimId: 'claim-b', durationMs: LEASE_MS, record })
  expect(grant.status).toBe('OK')
  const value = { state: 'completed' as const, claimId: 'claim-b', resultHash: resultHash('from b') }
  const vote = await ask(replica, b, { op: 'vote', id, epoch: 0, claimId: 'claim-b', term: grant.term as number, value, result: 'from b' })
  expect(vote.status).toBe('OK')
  expect(vote.vote).toBeDefined()
}

/** Overwrites one stored value with bytes no schema reads. */
async function damage (path: string, namespace: string, key: string): Promise<string | undefined> {
  const db = new Level<string, string>(path, { valueEncoding: 'utf8' })
  const sub = db.sublevel<string, string>(namespace, { valueEncoding: 'utf8' })
  await sub.put(key, '{"torn write')
  const others = db.sublevel<string, string>(namespace === 'leases' ? 'tasks' : 'leases', { valueEncoding: 'utf8' })
  const kept = await others.get(key)
  await db.close()
  return kept
}

async function rawValue (path: string, namespace: string, key: string): Promise<string | undefined> {
  const db = new Level<string, string>(path, { valueEncoding: 'utf8' })
  const value = await db.sublevel<string, string>(namespace, { valueEncoding: 'utf8' }).get(key)
  await db.close()
  return value
}

describe('a task whose state is unreadable on disk', () => {
  const tmp = useTmpDirs()

  for (const part of ['leases', 'tasks']) {
    it(`${part === 'leases' ? 'an unreadable lease' : 'an unreadable record'}: the member refuses to grant, vote or store the task again, and keeps what is on disk`, async () => {
      const [a, , c] = peers as [Peer, Peer, Peer]
      const path = join(await tmp(), 'store')
      const record = newTask(`damaged ${part}`)
      const intact = newTask(`intact ${part}`)
      const id = record.task.id
      let node = await open(path, a)
      await grantAndVote(node.replica, record)
      await grantAndVote(node.replica, intact)
      await node.store.close()
      const kept = await damage(path, part, id)
      expect(kept).toBeDefined()

      node = await open(path, a)
      // B's lease is live and A voted: a member that read its lease as empty would grant C and vote for C's result
      const claim = await ask(node.replica, c, { op: 'acquire', id, epoch: 0, claimId: 'claim-c', durationMs: LEASE_MS, record })
      expect(claim).toEqual({ status: 'ERROR', reason: DAMAGED_REASON })
      const value = { state: 'completed' as const, claimId: 'claim-c', resultHash: resultHash('from c') }
      const vote = await ask(node.replica, c, { op: 'vote', id, epoch: 0, claimId: 'claim-c', term: 1, value, result: 'from c' })
      expect(vote).toEqual({ status: 'ERROR', reason: DAMAGED_REASON })
      // a copy pushed by a peer (anti-entropy, a holder that found it unknown here) is not stored over it
      expect(await node.replica.put(record)).toBeUndefined()
      expect(await node.replica.get(id)).toEqual({})
      expect(node.replica.stats.damagedRefusals).toBe(3)

      // the other task of the same store is served as before: A voted for B there
      const other = await ask(node.replica, c, { op: 'acquire', id: intact.task.id, epoch: 0, claimId: 'claim-c', durationMs: LEASE_MS })
      expect(other.status).toBe('VOTED')
      await node.store.close()

      // nothing was written over the part that survived: the vote and grant are still there for a repair
      const other2 = part === 'leases' ? 'tasks' : 'leases'
      expect(await rawValue(path, other2, id)).toBe(kept)
      expect(await rawValue(path, part, id)).toBe('{"torn write')
    })
  }
})
