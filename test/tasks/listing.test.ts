import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createdKey } from '../../node/store/store.js'
import { makeTask, newRecord, resultHash, statementBytes } from '../../protocols/task/index.js'
import type { FinalValue, TaskRecord } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet } from '../../sim/testnet.js'

/** Unfinished tasks, each created a second after the one before, written to the node's replica. */
async function putTasks (node: AgentNode, capabilities: string[], t0: number): Promise<string[]> {
  const me = node.peerId.toString()
  const records = capabilities.map((capability, i) => newRecord(makeTask({ capability, input: i, submitter: me, maxAttempts: 3, timeoutMs: 1_000, deadline: t0 + 3_600_000 + i * 1_000, now: t0 + i * 1_000 }), { epoch: 0, members: [me] }, t0 + i * 1_000))
  for (const r of records) expect(await node.tasks!.replica.put(r)).toBeDefined()
  return records.map(r => r.task.id)
}

/** Completed copies of tasks placed on two other peers, each certified by both: finished tasks a node keeps for a week. */
async function finishedRecords (count: number, t0: number): Promise<TaskRecord[]> {
  const keys = await Promise.all([0, 1].map(async () => generateKeyPair('Ed25519')))
  const members = keys.map(k => peerIdFromPrivateKey(k).toString())
  return Promise.all(Array.from({ length: count }, async (_, i) => {
    const task = makeTask({ capability: 'a', input: `done ${i}`, submitter: members[0] as string, maxAttempts: 1, timeoutMs: 1_000, deadline: t0 + 3_600_000, now: t0 + i })
    const value: FinalValue = { state: 'completed', claimId: 'c1', resultHash: resultHash(i) }
    const votes = await Promise.all(keys.map(async (k, j) => ({ peer: members[j] as string, term: 1, sig: Buffer.from(await k.sign(statementBytes({ id: task.id, generation: 0, epoch: 0, term: 1, value }))).toString('base64') })))
    const record = newRecord(task, { epoch: 0, members }, t0 + i)
    return { ...record, attempts: [{ claimId: 'c1', generation: 0, peer: members[0] as string, startedAt: t0 + i, endedAt: t0 + i, outcome: 'completed' as const }], final: { state: 'completed' as const, at: t0 + i, generation: 0, claimId: 'c1', peer: members[0] as string, resultSize: 1, cert: { id: task.id, generation: 0, epoch: 0, value, votes } } }
  }))
}

describe('listing tasks', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('reads the newest records from the creation index, not every record, and rebuilds the index of a store from before it', async () => {
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [] } })
    await net.ready()
    const node = net.nodes[0]!
    const t0 = Date.now() - 3_600_000
    // 300 tasks, every third one of capability b; listed newest first
    const ids = await putTasks(node, Array.from({ length: 300 }, (_, i) => i % 3 === 0 ? 'b' : 'a'), t0)
    const newest = [...ids].reverse()
    const scan = vi.spyOn(node.store.tasks, 'entries')
    const list = async (filter: Parameters<NonNullable<AgentNode['tasks']>['service']['list']>[0]): Promise<string[]> =>
      (await node.tasks!.service.list(filter)).map(r => r.task.id)
    expect(await list({ limit: 10 })).toEqual(newest.slice(0, 10))
    expect(await list({ capability: 'b', limit: 5 })).toEqual(newest.filter((_, i) => (299 - i) % 3 === 0).slice(0, 5))
    expect(await list({ idPrefix: ids[7]!.slice(0, 12) })).toEqual([ids[7]])
    // the whole store was read for every listing before
    expect(scan).not.toHaveBeenCalled()
    scan.mockRestore()

    // an entry left by a record now created at another time (a merge of two submits of one
    // idempotency key), or by a record gone: not listed, and dropped
    const twice = createdKey(t0 + 10_000_000, ids[5]!)
    const gone = createdKey(t0 + 10_000_001, 'f'.repeat(64))
    await node.store.created.put(twice, 1)
    await node.store.created.put(gone, 1)
    expect(await list({ limit: 3 })).toEqual(newest.slice(0, 3))
    const keys: string[] = []
    for await (const [key] of node.store.created.entries()) keys.push(key)
    expect(keys).not.toContain(twice)
    expect(keys).not.toContain(gone)
    expect(keys).toHaveLength(300)

    // a data dir written before the index: its entries and the mark that it was built are gone
    for await (const [key] of node.store.created.entries()) await node.store.created.del(key)
    await node.store.meta.del('created-index')
    await node.stop()
    const again = await net.restartNode(0, { tasks: { ...FAST_TASKS, agents: [] } })
    expect((await again.tasks!.service.list({ limit: 300 })).map(r => r.task.id)).toEqual(newest)
  })

  it('lists unfinished tasks, and a parent\'s subtasks, from those records alone, not every finished one', async () => {
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [] } })
    await net.ready()
    const node = net.nodes[0]!
    const t0 = Date.now() - 3_600_000
    const finished = await finishedRecords(1_000, t0)
    for (const r of finished) expect((await node.tasks!.replica.put(r))?.final?.state).toBe('completed')
    const pending = await putTasks(node, ['a', 'b', 'a'], t0 + 2_000_000)
    const me = node.peerId.toString()
    const parent = finished[10]!.task.id
    const children = [0, 1].map(i => newRecord(makeTask({ capability: 'a', input: i, submitter: me, maxAttempts: 3, timeoutMs: 1_000, deadline: t0 + 7_200_000, parent, now: t0 + 1_000_000 + i }), { epoch: 0, members: [me] }, t0 + 1_000_000 + i))
    for (const r of children) expect(await node.tasks!.replica.put(r)).toBeDefined()
    const read = vi.spyOn(node.store.tasks, 'getMany')
    const readIds = (): number => read.mock.calls.reduce((n, [ids]) => n + ids.length, 0)
    // index entries read: back to the oldest unfinished task, not to the first task ever kept
    let indexed = 0
    const entries = node.store.created.entries.bind(node.store.created)
    node.store.created.entries = async function * (options) { for await (const e of entries(options)) { indexed++; yield e } }
    const list = async (filter: Parameters<NonNullable<AgentNode['tasks']>['service']['list']>[0]): Promise<string[]> =>
      (await node.tasks!.service.list(filter)).map(r => r.task.id)

    // newest first, as every listing; the 1,000 finished records are never read
    expect(await list({ state: 'pending' })).toEqual([...pending].reverse().concat(children.map(r => r.task.id).reverse()))
    expect(await list({ state: 'pending', capability: 'b' })).toEqual([pending[1]])
    expect(await list({ state: 'running' })).toEqual([])
    expect(readIds()).toBeLessThanOrEqual(3 * 5)
    expect(indexed).toBeLessThanOrEqual(3 * 5)
    read.mockClear()
    indexed = 0
    expect(await list({ parent })).toEqual(children.map(r => r.task.id).reverse())
    expect(readIds()).toBe(2)
    expect(indexed).toBeLessThanOrEqual(5)
    // an entry of the oldest unfinished task newer than its own (left by a merge that moved its
    // creation time) does not end the scan before its own entry: it is dropped, and the task listed
    await node.store.created.put(createdKey(t0 + 3_000_000, children[0]!.task.id), 1)
    expect(await list({ state: 'pending' })).toEqual([...pending].reverse().concat(children.map(r => r.task.id).reverse()))
    // a finished state still reads the index of every task
    expect(await list({ state: 'completed', limit: 1_000 })).toHaveLength(1_000)
    // one capability, from its own part of the capability index: 1 record read, not 1,000 of another
    read.mockClear()
    expect(await list({ capability: 'b' })).toEqual([pending[1]])
    expect(await list({ capability: 'b', state: 'completed' })).toEqual([])
    expect(readIds()).toBe(2)
    read.mockRestore()
    // a filter no capability can match, "/" and all, lists nothing and drops no entry of another
    const b = (await node.tasks!.service.get(pending[1]!)).record
    expect(await list({ capability: `b/${createdKey(b.task.createdAt, b.task.id).split('/')[0]!}` })).toEqual([])
    expect(await list({ capability: 'b' })).toEqual([pending[1]])

    // a data dir written before the capability index gets it built at start
    for await (const [key] of node.store.byCapability.entries()) await node.store.byCapability.del(key)
    await node.store.meta.del('capability-index')
    await node.stop()
    const again = await net.restartNode(0, { tasks: { ...FAST_TASKS, agents: [] } })
    expect((await again.tasks!.service.list({ capability: 'b' })).map(r => r.task.id)).toEqual([pending[1]])
    expect(await again.tasks!.service.list({ capability: 'a', limit: 2_000 })).toHaveLength(1_000 + 2 + 2)
  })
})

describe('listing dead letters', () => {
  const tmp = useTmpDirs()

  it('orders them by the index\'s time of death and reads only the page', async () => {
    const { Store } = await import('../../node/store/store.js')
    const { listDeadLetters } = await import('../../node/tasks/listing.js')
    const store = await Store.open({ path: `${await tmp()}/store` })
    try {
      const me = '12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'
      // 500 dead, written in an order that is not their order of death
      const dead = new Map(Array.from({ length: 500 }, (_, i) => {
        const at = 1_000 + ((i * 7919) % 500)
        const task = makeTask({ capability: 'a', input: i, submitter: me, maxAttempts: 1, timeoutMs: 1_000, deadline: 1, now: 0 })
        return [task.id, { ...newRecord(task, { epoch: 0, members: [me] }, 0), final: { at, state: 'dead' } } as unknown as TaskRecord] as const
      }))
      await store.write([...dead].map(([id, r]) => store.deadLetters.putOp(id, { at: r.final!.at, capability: 'a' })))
      const reads: string[] = []
      const read = async (id: string): Promise<TaskRecord | undefined> => { reads.push(id); return dead.get(id) }
      const newest = [...dead.values()].sort((a, b) => b.final!.at - a.final!.at).map(r => r.task.id)
      expect((await listDeadLetters(store, read, 20)).map(r => r.task.id)).toEqual(newest.slice(0, 20))
      expect(reads).toHaveLength(20)
      // a copy redriven since (no longer dead) is passed over, and the page still filled
      const redriven = dead.get(newest[0]!)!
      dead.set(newest[0]!, { ...redriven, final: undefined, generation: 1 })
      reads.length = 0
      expect((await listDeadLetters(store, read, 20)).map(r => r.task.id)).toEqual(newest.slice(1, 21))
      expect(reads).toHaveLength(21)
      expect(await listDeadLetters(store, read)).toHaveLength(499)
    } finally {
      await store.close()
    }
  })
})

describe('the capability index', () => {
  const tmp = useTmpDirs()

  it('holds each capability\'s keys apart from those of a capability it begins', async () => {
    const { Store, capabilityKey, capabilityRange } = await import('../../node/store/store.js')
    const store = await Store.open({ path: `${await tmp()}/store` })
    try {
      const names = ['a', 'a.b', 'a-b', 'a0', 'a_b', 'ab', 'A', 'a9z', 'b']
      await store.write(names.map((name, i) => store.byCapability.putOp(capabilityKey(name, createdKey(i, 'f'.repeat(64))), 1)))
      for (const name of names) {
        const keys: string[] = []
        for await (const [key] of store.byCapability.entries(capabilityRange(name))) keys.push(key)
        expect(keys).toEqual([capabilityKey(name, createdKey(names.indexOf(name), 'f'.repeat(64)))])
      }
    } finally {
      await store.close()
    }
  })
})
