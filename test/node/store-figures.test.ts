import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'

const SUBMITTER = '12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'
const task = makeTask({ capability: 'echo', input: 1, submitter: SUBMITTER, maxAttempts: 1, timeoutMs: 1, deadline: 1 })
const record = newRecord(task, { epoch: 0, members: [SUBMITTER] }, 1)
const result = { claimId: 'c', peer: SUBMITTER, value: { ok: true }, size: 11, at: 1 }

/** Counts every call of a namespace's count, each made `delayMs` slower. */
function countCalls (ns: { count: () => Promise<number> }, delayMs = 0): { calls: number } {
  const seen = { calls: 0 }
  const count = ns.count.bind(ns)
  ns.count = async () => {
    seen.calls++
    const n = await count()
    await new Promise(resolve => setTimeout(resolve, delayMs))
    return n
  }
  return seen
}

describe('store figures (GET /v1/node)', () => {
  const tmp = useTmpDirs()
  let store: Store | undefined
  afterEach(async () => { await store?.close() })

  it('counts every record, over more than one batch of keys', async () => {
    store = await Store.open({ path: join(await tmp(), 'store') })
    const s = store
    await s.write([
      ...Array.from({ length: 2_500 }, (_, i) => s.tasks.putOp(`t${i}`, record)),
      ...Array.from({ length: 1_001 }, (_, i) => s.results.putOp(`t${i}`, result)),
      ...Array.from({ length: 3 }, (_, i) => s.deadLetters.putOp(`t${i}`, { at: 1, capability: 'echo' }))
    ])
    expect(await s.figures()).toEqual({ tasks: 2_500, leases: 0, results: 1_001, deadLetters: 3, corruptRecords: 0 })
  })

  it('shares one count among callers that ask at once', async () => {
    store = await Store.open({ path: join(await tmp(), 'store') })
    await store.tasks.put('t1', record)
    const tasks = countCalls(store.tasks, 50)
    const all = await Promise.all(Array.from({ length: 20 }, async () => store!.figures()))
    expect(tasks.calls).toBe(1)
    expect(new Set(all.map(f => f.tasks))).toEqual(new Set([1]))
  })

  it('reuses a count for ten times as long as it took, then counts again', async () => {
    store = await Store.open({ path: join(await tmp(), 'store') })
    await store.tasks.put('t1', record)
    // a count of 200 ms, as a large store's: reused for about two seconds
    const tasks = countCalls(store.tasks, 200)
    expect((await store.figures()).tasks).toBe(1)
    await store.tasks.put('t2', record)
    expect((await store.figures()).tasks).toBe(1)
    expect(tasks.calls).toBe(1)
    await waitFor(async () => (await store!.figures()).tasks === 2, { what: 'a fresh count once the last one is old', timeoutMs: 30_000 })
    expect(tasks.calls).toBe(2)
    // closed, it answers as LevelDB does, not from the count it keeps
    await store.close()
    await expect(store.figures()).rejects.toThrow()
    store = undefined
  })
})
