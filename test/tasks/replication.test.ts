import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { PartitionController } from '../../sim/faults.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet } from '../../sim/testnet.js'

const TASKS = { ...FAST_TASKS, antiEntropyIntervalMs: 300, agents: [echoAgent] }

async function submitAll (node: AgentNode, n: number, tag: string): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) ids.push((await node.tasks!.service.submit({ capability: 'echo', input: { tag, i } })).id)
  return ids
}

/** Every record is held, with equal content, by every member of its replica set (in `by`'s view). */
async function placed (net: Testnet, ids: string[], by: AgentNode): Promise<boolean> {
  for (const id of ids) {
    const set = by.tasks!.replicaSets.for(id).map(p => p.toString())
    const holders = net.nodes.filter(n => n.libp2p.status === 'started' && set.includes(n.peerId.toString()))
    if (holders.length !== set.length) return false
    const hashes = new Set(holders.map(n => n.tasks!.replica.hashes.get(id)))
    if (hashes.has(undefined) || hashes.size !== 1) return false
  }
  return true
}

describe('replicated records', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('keeps every result readable after two of five nodes are lost', async () => {
    net = await createTestnet(5, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const ids = await submitAll(net.nodes[0]!, 20, 'loss')
    for (const id of ids) await net.nodes[0]!.tasks!.service.waitFor(id, 10_000)
    await net.nodes[3]!.stop()
    await net.nodes[4]!.stop()
    for (const survivor of net.nodes.slice(0, 3)) {
      for (const [i, id] of ids.entries()) {
        const view = await waitFor(async () => {
          const v = await survivor.tasks!.service.find(id)
          return v?.result !== undefined ? v : undefined
        }, { what: `result ${i} on a survivor`, timeoutMs: 10_000 })
        expect(view.result?.value).toEqual({ tag: 'loss', i })
      }
    }
  })

  it('moves records to new replica sets when nodes join', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const ids = await submitAll(net.nodes[0]!, 30, 'join')
    for (const id of ids) await net.nodes[0]!.tasks!.service.waitFor(id, 10_000)
    await net.addNode()
    await net.addNode()
    await net.ready()
    // with five peers, most records now belong on a set that includes a newcomer
    const moved = ids.filter(id => net!.nodes[0]!.tasks!.replicaSets.for(id).some(p => p.equals(net!.nodes[3]!.peerId) || p.equals(net!.nodes[4]!.peerId)))
    expect(moved.length).toBeGreaterThan(5)
    await waitFor(async () => placed(net!, ids, net!.nodes[0]!), { what: 'every record on its new replica set', timeoutMs: 15_000 })
    for (const id of moved) {
      const newcomer = [net.nodes[3]!, net.nodes[4]!].find(n => net!.nodes[0]!.tasks!.replicaSets.includes(id, n.peerId.toString()))!
      expect((await newcomer.store.tasks.get(id))?.final?.state).toBe('completed')
      expect((await newcomer.store.results.get(id))?.value).toMatchObject({ tag: 'join' })
    }
  })

  it('converges after a partition heals', async () => {
    const partition = new PartitionController()
    net = await createTestnet(4, {
      baseDir: await tmp(),
      tasks: TASKS,
      perNode: i => ({ connectionGater: partition.gater(() => net?.nodes[i]?.peerId.toString()) })
    })
    await net.ready()
    const [a, b, c, d] = net.nodes as [AgentNode, AgentNode, AgentNode, AgentNode]
    await partition.split([[a, b], [c, d]])
    await waitFor(() => a.tasks!.presence.live().length === 2 && c.tasks!.presence.live().length === 2, { what: 'each side to see only itself', timeoutMs: 10_000 })
    const left = await submitAll(a, 10, 'left')
    const right = await submitAll(c, 10, 'right')
    for (const id of left) await a.tasks!.service.waitFor(id, 10_000)
    for (const id of right) await c.tasks!.service.waitFor(id, 10_000)
    expect(await b.store.tasks.get(right[0]!)).toBeUndefined()
    partition.heal()
    // the joiners reconnect through their bootstrap peer; presence and anti-entropy do the rest
    await net.ready(20_000)
    await waitFor(async () => placed(net!, [...left, ...right], a), {
      what: () => `all records on their replica sets; ${JSON.stringify(net!.nodes.map(n => ({ live: n.tasks!.presence.live().length, records: n.tasks!.replica.hashes.size, ae: n.tasks!.antiEntropy.stats })))}`,
      timeoutMs: 20_000
    })
    for (const node of net.nodes) {
      for (const id of [...left, ...right]) {
        const view = await node.tasks!.service.find(id)
        expect(view?.record.final?.state).toBe('completed')
      }
    }
  })

  it('a node restarted from its data dir has its records and lease terms', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const ids = await submitAll(net.nodes[0]!, 10, 'restart')
    for (const id of ids) await net.nodes[0]!.tasks!.service.waitFor(id, 10_000)
    const node = net.nodes[1]!
    const before = await node.store.figures()
    const leases = await Promise.all(ids.map(async id => (await node.store.leases.get(id))?.maxTerm))
    await node.stop()
    const again = await net.restartNode(1, { tasks: TASKS })
    expect(await again.store.figures()).toMatchObject({ tasks: before.tasks, results: before.results })
    expect(await Promise.all(ids.map(async id => (await again.store.leases.get(id))?.maxTerm))).toEqual(leases)
    expect(again.tasks!.replica.hashes.size).toBe(before.tasks)
  })

  it('never gossips a result over the inline limit: other nodes fetch it from the replicas', async () => {
    net = await createTestnet(4, { baseDir: await tmp(), tasks: { ...TASKS, maxInlineResultBytes: 1_024 } })
    await net.ready()
    const notices: unknown[] = []
    for (const node of net.nodes) node.tasks!.gossip.addEventListener('notice', evt => { if (evt.detail.event === 'completed') notices.push(evt.detail) })
    const big = 'x'.repeat(20_000)
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'echo', input: big })
    const view = await net.nodes[3]!.tasks!.service.waitFor(id, 10_000)
    expect(view.result?.value).toBe(big)
    await waitFor(() => notices.length > 0, { what: 'the completion notice' })
    for (const notice of notices) {
      expect(notice).not.toHaveProperty('result')
      expect(notice).toMatchObject({ resultSize: 20_002 })
    }
  })

  it('forgets completed tasks after the retention period, and does not take them back', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), tasks: { ...TASKS, retentionMs: 300 } })
    await net.ready()
    const [id] = await submitAll(net.nodes[0]!, 1, 'retention')
    await net.nodes[0]!.tasks!.service.waitFor(id!, 10_000)
    await waitFor(async () => (await Promise.all(net!.nodes.map(async n => n.store.tasks.get(id!)))).every(r => r === undefined), { what: 'the record to expire everywhere', timeoutMs: 10_000 })
    expect(await net.nodes[1]!.store.results.get(id!)).toBeUndefined()
  })
})
