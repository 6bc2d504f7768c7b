import { afterEach, describe, expect, it } from 'vitest'
import { PartitionController } from '../../sim/faults.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'

/**
 * An agent whose first run anywhere never settles and never looks at its signal (as one that calls
 * a service without passing it); every later run answers with the node it ran on, so a result
 * tells which run made it.
 */
function stubbornOnce (): { agentOn: (node: number) => Agent<string>, runs: string[] } {
  const runs: string[] = []
  const agentOn = (node: number): Agent<string> => ({
    name: 'stubborn',
    capabilities: [{ name: 'stubborn' }],
    concurrency: 1,
    run: async () => {
      runs.push(`node${node}`)
      if (runs.length === 1) return await new Promise<never>(() => {})
      return `node${node}`
    }
  })
  return { agentOn, runs }
}

const TASKS = { ...FAST_TASKS, abortGraceMs: 300, claimLagLimitMs: 5_000 }

describe('a run whose agent ignores its abort, ended by a lost lease or a stop', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  const holderOf = (id: string): AgentNode | undefined => net!.nodes.find(n => n.tasks!.executor.running().includes(id))

  it('a holder cut off past its lease abandons the run abortGraceMs later and frees its slot; the majority runs the task, one result on every store', async () => {
    const stubborn = stubbornOnce()
    const partition = new PartitionController()
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: [stubborn.agentOn(i)] }, connectionGater: partition.gater(() => net?.nodes[i]?.peerId.toString()) }) })
    await net.ready()
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'stubborn', input: 'x', timeoutMs: 600_000 })
    await waitFor(() => holderOf(id) !== undefined, { what: 'the task to start' })
    const holder = holderOf(id)!
    const rest = net.nodes.filter(n => n !== holder)
    await partition.split([[holder], rest])
    // its lease lapses unrenewed; the run, aborted, is let go once the grace is over, while still cut off
    await waitFor(() => holder.tasks!.executor.stats.runsAbandoned === 1 && holder.tasks!.runtime.freeSlots().stubborn === 1, {
      what: () => `the cut-off holder to abandon the run (${JSON.stringify(holder.tasks!.executor.stats)})`,
      timeoutMs: 15_000
    })
    expect(holder.tasks!.executor.stats.leaseLost).toBe(1)
    expect(holder.tasks!.executor.running()).not.toContain(id)
    const view = await rest[0]!.tasks!.service.waitFor(id, 20_000)
    expect(view.record.final?.state).toBe('completed')
    const winner = String(view.result?.value)
    expect(winner).not.toBe(`node${net.nodes.indexOf(holder)}`)
    partition.heal()
    // every store that holds the task holds the majority's result, the cut-off holder's included
    await waitFor(async () => (await Promise.all(net!.nodes.map(async n => await n.tasks!.replica.get(id)))).every(x => x.result?.value === winner), {
      what: 'every store holding the one result',
      timeoutMs: 20_000
    })
    expect(stubborn.runs).toHaveLength(2)
  })

  it('a node stopped while its agent ignores the abort still stops, and lets the lease go: another node runs the task', async () => {
    const stubborn = stubbornOnce()
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: [stubborn.agentOn(i)] } }) })
    await net.ready()
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'stubborn', input: 'x', timeoutMs: 600_000 })
    await waitFor(() => holderOf(id) !== undefined, { what: 'the task to start' })
    const holder = holderOf(id)!
    const rest = net.nodes.filter(n => n !== holder)
    let stopped = false
    void holder.stop().then(() => { stopped = true })
    await waitFor(() => stopped, { what: 'the holder to stop though its agent never returns', timeoutMs: 15_000 })
    const view = await rest[0]!.tasks!.service.waitFor(id, 20_000)
    expect(view.record.final?.state).toBe('completed')
    expect(view.result?.value).not.toBe(`node${net.nodes.indexOf(holder)}`)
    // a stop is not the task's fault: the attempt the abandoned run held is given back or lapses, and the task still completes
    expect(stubborn.runs).toHaveLength(2)
  })
})
