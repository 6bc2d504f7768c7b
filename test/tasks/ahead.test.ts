import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { LeaseRequest } from '../../protocols/lease/index.js'
import type { Testnet } from '../../sim/testnet.js'

/*
 * A pure agent's task, submitted on a member that runs it: run before the claim, and each member
 * asked once, to grant and vote in one write (AheadVotes). Leases a busy machine does not renew
 * within a task, so the requests counted are the task's own.
 */
const TASKS = { ...FAST_TASKS, leaseMs: 10_000, claimLagLimitMs: 5_000 }

/** The lease requests each node served for task `id`, as op names (`acquire+vote`: an acquire that carried a vote). */
function recordLeaseOps (nodes: AgentNode[], strip = (_node: AgentNode, _req: LeaseRequest): boolean => false): Map<AgentNode, string[]> {
  const ops = new Map<AgentNode, string[]>()
  for (const node of nodes) {
    ops.set(node, [])
    const replica = node.tasks!.replica
    const handle = replica.handleLease.bind(replica)
    replica.handleLease = async (from, req) => {
      ops.get(node)!.push(req.op === 'acquire' && req.vote !== undefined ? 'acquire+vote' : req.op)
      if (req.op === 'acquire' && req.vote !== undefined && strip(node, req)) {
        const { vote, ...plain } = req
        return await handle(from, plain)
      }
      return await handle(from, req)
    }
  }
  return ops
}

/** Every node holds the task completed, with the same certificate and `value` as its result. */
async function everyStoreHolds (net: Testnet, id: string, value: unknown): Promise<void> {
  await waitFor(async () => (await Promise.all(net.nodes.map(async n => n.tasks!.replica.get(id)))).every(c => c.record?.final?.state === 'completed' && c.result !== undefined), { what: 'every member holding the certified result' })
  const copies = await Promise.all(net.nodes.map(async n => n.tasks!.replica.get(id)))
  for (const c of copies) {
    expect(c.result?.value).toEqual(value)
    expect(c.record?.final?.cert.value).toEqual(copies[0]?.record?.final?.cert.value)
  }
}

/** A pure agent that counts its runs. */
function countingEcho (): Agent & { runs: number } {
  const agent = { ...echoAgent, runs: 0, run: async (ctx: { input: unknown }) => { agent.runs++; return ctx.input } }
  return agent
}

describe('a pure agent\'s task is claimed and voted in one request a member', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('runs it before the claim: each other member is asked once, grants, votes and stores the certificate', async () => {
    const agent = countingEcho()
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [a, ...others] = net.nodes as [AgentNode, ...AgentNode[]]
    const ops = recordLeaseOps(others)
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: { n: 1 } })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    await everyStoreHolds(net, id, { n: 1 })
    for (const node of others) expect(ops.get(node)).toEqual(['acquire+vote'])
    expect(agent.runs).toBe(1)
    expect(a.tasks!.leases.stats.votedWithGrants).toBe(1)
    await waitFor(() => a.tasks!.executor.stats.completed === 1, { what: 'the run counted' })
  })

  it('claims an agent that is not pure first and asks for the votes after its run', async () => {
    const random: Agent = { name: 'random', capabilities: [{ name: 'random', description: 'a result that differs per run' }], run: async () => Math.random() }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: i === 0 ? [random] : [] } }) })
    await net.ready()
    const [a, ...others] = net.nodes as [AgentNode, ...AgentNode[]]
    const ops = recordLeaseOps(others)
    const { id } = await a.tasks!.service.submit({ capability: 'random', input: null })
    const view = await a.tasks!.service.waitFor(id, 10_000)
    expect(view.record.final?.state).toBe('completed')
    await everyStoreHolds(net, id, view.result?.value)
    for (const node of others) expect(ops.get(node)).toEqual(['acquire', 'vote'])
  })

  it('asks a member that refuses the vote field (a peer from before it) the plain acquire, then for its vote', async () => {
    const agent = countingEcho()
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const ops = recordLeaseOps([b])
    // c answers an acquire with a vote as an older peer's schema would
    const cOps: string[] = []
    const handle = c.tasks!.replica.handleLease.bind(c.tasks!.replica)
    c.tasks!.replica.handleLease = async (from, req) => {
      cOps.push(req.op === 'acquire' && req.vote !== undefined ? 'acquire+vote' : req.op)
      if (req.op === 'acquire' && req.vote !== undefined) return { status: 'ERROR', reason: 'bad request: unknown key "vote"' }
      return await handle(from, req)
    }
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'older peer' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    await everyStoreHolds(net, id, 'older peer')
    expect(ops.get(b)).toEqual(['acquire+vote'])
    // granted the plain way, then given the certificate that a's and b's votes made
    expect(cOps.slice(0, 2)).toEqual(['acquire+vote', 'acquire'])
    expect(cOps.slice(2).every(op => op === 'vote' || op === 'commit')).toBe(true)
    expect(agent.runs).toBe(1)
  })

  it('asks members that grant without voting for their votes, with the result of the one run', async () => {
    const agent = countingEcho()
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [a, ...others] = net.nodes as [AgentNode, ...AgentNode[]]
    // the others take the acquire and drop its vote, as a member whose vote could not be cast would
    const ops = recordLeaseOps(others, () => true)
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'voted later' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    await everyStoreHolds(net, id, 'voted later')
    for (const node of others) expect(ops.get(node)).toEqual(['acquire+vote', 'vote'])
    expect(agent.runs).toBe(1)
    expect(a.tasks!.leases.stats.votedWithGrants).toBe(0)
  })

  it('runs a pure agent that asks for a durable step again under its lease, where the step works', async () => {
    let runs = 0
    const stepper: Agent = { name: 'stepper', capabilities: [{ name: 'stepper', description: 'one durable step' }], pure: true, run: async ctx => { runs++; return await ctx.step('one', async () => 'stepped') } }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: i === 0 ? [stepper] : [] } }) })
    await net.ready()
    const a = net.nodes[0]!
    const { id } = await a.tasks!.service.submit({ capability: 'stepper', input: null })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    await everyStoreHolds(net, id, 'stepped')
    expect(runs).toBe(2)
  })
})
