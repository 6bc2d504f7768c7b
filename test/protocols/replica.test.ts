import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { afterEach, describe, expect, it } from 'vitest'
import { Replica, retryDelay } from '../../protocols/replica/index.js'
import { MemoryReplicaStore, makeTask, newRecord, stateOf } from '../../protocols/task/index.js'
import { LevelReplicaStore } from '../../node/store/replica-store.js'
import { Store } from '../../node/store/store.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { ReplicaStore } from '../../protocols/task/index.js'

const A = '12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'
const B = '12D3KooWBTn2n5nxGB6qhtWcD3HJjam2EZBTNoj7kRMQEBdYohwg'
const log = logger('test:replica')

interface Fixture { store: ReplicaStore, reopen: () => Promise<ReplicaStore>, close: () => Promise<void> }

// one suite, two stores: the LevelDB store must behave as the memory one, and survive a reopen
const stores: Array<[string, (dir: () => Promise<string>) => Promise<Fixture>]> = [
  ['memory', async () => {
    const store = new MemoryReplicaStore()
    return { store, reopen: async () => store, close: async () => {} }
  }],
  ['level', async dir => {
    const path = join(await dir(), 'store')
    let db = await Store.open({ path })
    return {
      store: new LevelReplicaStore(db, { sync: false }),
      reopen: async () => { await db.close(); db = await Store.open({ path }); return new LevelReplicaStore(db) },
      close: async () => { await db.close() }
    }
  }]
]

describe.each(stores)('replica on the %s store', (_name, make) => {
  const tmp = useTmpDirs()
  let fixture: Fixture
  let clock = 1_000
  const now = (): number => clock
  afterEach(async () => { await fixture?.close() })

  async function setup (maxAttempts = 3): Promise<{ replica: Replica, id: string }> {
    fixture = await make(tmp)
    clock = 1_000
    const replica = new Replica(fixture.store, { now, log, backoffBaseMs: 100, backoffCapMs: 1_000 })
    const task = makeTask({ capability: 'echo', input: 1, submitter: A, maxAttempts, timeoutMs: 1000, deadline: 1_000_000, now: clock })
    await replica.put(newRecord(task, clock))
    return { replica, id: task.id }
  }

  it('grants one live lease at a time, with a term above every earlier one', async () => {
    const { replica, id } = await setup()
    const first = await replica.handleLease(A, { op: 'acquire', id, claimId: 'a1', durationMs: 500 })
    expect(first).toMatchObject({ status: 'OK', term: 1, attempt: 1 })
    expect(await replica.handleLease(B, { op: 'acquire', id, claimId: 'b1', durationMs: 500 })).toMatchObject({ status: 'DENIED', holder: A })
    expect(await replica.handleLease(A, { op: 'acquire', id, claimId: 'a1', durationMs: 500 })).toMatchObject({ status: 'OK', term: 1 })
    expect(await replica.handleLease(A, { op: 'renew', id, claimId: 'a1', term: 1, durationMs: 500 })).toMatchObject({ status: 'OK' })
    expect(await replica.handleLease(B, { op: 'renew', id, claimId: 'b1', term: 1, durationMs: 500 })).toMatchObject({ status: 'DENIED' })
    clock += 600
    // expired: a retry after backoff, then a new term
    const early = await replica.handleLease(B, { op: 'acquire', id, claimId: 'b1', durationMs: 500 })
    expect(early.status).toBe('RETRY_LATER')
    clock = early.notBefore as number
    // the grant tells the new holder it runs the second attempt: its own copy may not know of the first
    expect(await replica.handleLease(B, { op: 'acquire', id, claimId: 'b1', durationMs: 500 })).toMatchObject({ status: 'OK', term: 2, attempt: 2 })
  })

  it('accepts a result only from the current term, once', async () => {
    const { replica, id } = await setup()
    await replica.handleLease(A, { op: 'acquire', id, claimId: 'a1', durationMs: 500 })
    clock += 600
    const wait = await replica.handleLease(B, { op: 'acquire', id, claimId: 'b1', durationMs: 500 })
    clock = wait.notBefore as number
    expect(await replica.handleLease(B, { op: 'acquire', id, claimId: 'b1', durationMs: 500 })).toMatchObject({ status: 'OK', term: 2 })
    expect(await replica.handleLease(A, { op: 'complete', id, claimId: 'a1', term: 1, result: 'late', size: 6, durationMs: 500 })).toEqual({ status: 'STALE_TERM' })
    expect(await replica.handleLease(A, { op: 'commit', id, claimId: 'a1', term: 1 })).toEqual({ status: 'STALE_TERM' })
    expect(replica.stats.staleResults).toBe(2)
    expect(await replica.handleLease(B, { op: 'complete', id, claimId: 'b1', term: 2, result: 'ok', size: 4, durationMs: 500 })).toEqual({ status: 'OK' })
    // kept, not yet final: a result is final only once committed
    expect((await replica.get(id)).result).toBeUndefined()
    expect(await replica.handleLease(B, { op: 'commit', id, claimId: 'b1', term: 2 })).toEqual({ status: 'OK' })
    expect(await replica.handleLease(B, { op: 'commit', id, claimId: 'b1', term: 2 })).toEqual({ status: 'OK' })
    const { record, result } = await replica.get(id)
    expect(stateOf(record!)).toBe('completed')
    expect(result?.value).toBe('ok')
    expect(await replica.handleLease(A, { op: 'acquire', id, claimId: 'a2', durationMs: 500 })).toMatchObject({ status: 'FINISHED', state: 'completed' })
  })

  it('refuses a result or a commit under a lease that lapsed by its own clock', async () => {
    const { replica, id } = await setup()
    await replica.handleLease(A, { op: 'acquire', id, claimId: 'a1', durationMs: 500 })
    expect(await replica.handleLease(A, { op: 'complete', id, claimId: 'a1', term: 1, result: 'r', size: 3, durationMs: 500 })).toEqual({ status: 'OK' })
    clock += 600
    expect(await replica.handleLease(A, { op: 'commit', id, claimId: 'a1', term: 1 })).toEqual({ status: 'STALE_TERM' })
    expect(stateOf((await replica.get(id)).record!)).not.toBe('completed')
  })

  it('keeps its terms across a restart: no term is granted twice', async () => {
    const { replica, id } = await setup()
    await replica.handleLease(A, { op: 'acquire', id, claimId: 'a1', durationMs: 500 })
    await replica.handleLease(A, { op: 'release', id, claimId: 'a1', term: 1, ran: false })
    const again = new Replica(await fixture.reopen(), { now, log })
    await again.load()
    expect(await again.handleLease(B, { op: 'acquire', id, claimId: 'b1', durationMs: 500 })).toMatchObject({ status: 'OK', term: 2 })
  })

  it('retries with backoff, then dead-letters after maxAttempts; redrive gives a new budget', async () => {
    const { replica, id } = await setup(2)
    await replica.handleLease(A, { op: 'acquire', id, claimId: 'a1', durationMs: 500 })
    const first = await replica.handleLease(A, { op: 'fail', id, claimId: 'a1', term: 1, error: 'boom', unrecoverable: false })
    expect(first).toMatchObject({ status: 'OK', dead: false })
    expect(first.notBefore).toBe(clock + retryDelay(id, 1, { baseMs: 100, capMs: 1_000 }))
    clock = first.notBefore as number
    await replica.handleLease(B, { op: 'acquire', id, claimId: 'b1', durationMs: 500 })
    clock += 600
    const swept = await replica.sweep()
    expect(swept.map(r => r.final?.state)).toEqual(['dead'])
    const { record } = await replica.get(id)
    expect(record?.final?.reason).toMatch(/2 of 2/)
    expect(record?.attempts.map(a => a.outcome)).toEqual(['failed', 'expired'])
    expect(await replica.handleLease(A, { op: 'redrive', id })).toEqual({ status: 'OK' })
    expect(await replica.handleLease(A, { op: 'acquire', id, claimId: 'a3', durationMs: 500 })).toMatchObject({ status: 'OK', term: 3, attempt: 1 })
  })

  it('fails at once on an unrecoverable error, and never retries a canceled task', async () => {
    const { replica, id } = await setup()
    await replica.handleLease(A, { op: 'acquire', id, claimId: 'a1', durationMs: 500 })
    expect(await replica.handleLease(A, { op: 'cancel', id })).toMatchObject({ status: 'OK', holder: A })
    expect(await replica.handleLease(A, { op: 'renew', id, claimId: 'a1', term: 1, durationMs: 500 })).toEqual({ status: 'CANCELED' })
    expect(await replica.handleLease(B, { op: 'acquire', id, claimId: 'b1', durationMs: 500 })).toMatchObject({ status: 'FINISHED', state: 'canceled' })
    const other = await setup()
    await other.replica.handleLease(A, { op: 'acquire', id: other.id, claimId: 'a1', durationMs: 500 })
    expect(await other.replica.handleLease(A, { op: 'fail', id: other.id, claimId: 'a1', term: 1, error: 'bad input', unrecoverable: true })).toMatchObject({ dead: true })
  })

  it('sends an unclaimed task past its deadline to the dead letters as unclaimed', async () => {
    const { replica, id } = await setup()
    clock = 2_000_000
    const swept = await replica.sweep()
    expect(swept[0]?.final).toMatchObject({ state: 'dead', reason: 'unclaimed' })
    expect(replica.active.has(id)).toBe(false)
  })

  it('answers UNKNOWN_TASK for a task it has no record of', async () => {
    const { replica } = await setup()
    expect(await replica.handleLease(A, { op: 'acquire', id: 'f'.repeat(64), claimId: 'x', durationMs: 500 })).toEqual({ status: 'UNKNOWN_TASK' })
  })
})
