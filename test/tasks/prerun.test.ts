import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { makeTask, newRecord, resultHash, summarize } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { interceptLease } from '../helpers/intercept-lease.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { LeaseRequest } from '../../protocols/lease/index.js'
import type { Testnet } from '../../sim/testnet.js'

/*
 * A pure agent's task, submitted on a member that runs it: run before the claim, and each member
 * asked once, to grant and vote in one write (PrerunVotes). Leases a busy machine does not renew
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

/** A pure agent that counts its runs, each taking `ms`. */
function countingEcho (ms = 0): Agent & { runs: number } {
  const agent = { ...echoAgent, runs: 0, run: async (ctx: { input: unknown }) => { agent.runs++; if (ms > 0) await new Promise(resolve => setTimeout(resolve, ms)); return ctx.input } }
  return agent
}

describe('a pure agent\'s task is claimed and voted in one request a member', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('runs it before the claim: each other member is asked once, grants, votes and stores the certificate', async () => {
    const agent = countingEcho(100)
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [a, ...others] = net.nodes as [AgentNode, ...AgentNode[]]
    const ops = recordLeaseOps(others)
    const runs: number[] = []
    a.tasks!.events.addEventListener('ran', e => { runs.push(e.detail.runMs) })
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: { n: 1 } })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    await everyStoreHolds(net, id, { n: 1 })
    // a renewal is the lease's own, not the task's (none is due within a task's few milliseconds)
    for (const node of others) expect(ops.get(node)!.filter(op => op !== 'renew')).toEqual(['acquire+vote'])
    expect(agent.runs).toBe(1)
    expect(a.tasks!.leases.stats.votedWithGrants).toBe(1)
    await waitFor(() => a.tasks!.executor.stats.completed === 1, { what: 'the run counted' })
    // the run's time is the agent's, made before the claim
    expect(runs.length).toBe(1)
    expect(runs[0]).toBeGreaterThanOrEqual(90)
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
    // a grant that comes after the votes were asked gets a vote request too, or the commit
    for (const node of others) expect(ops.get(node)![0]).toBe('acquire')
    expect(others.flatMap(n => ops.get(n)!)).not.toContain('acquire+vote')
    expect(others.flatMap(n => ops.get(n)!)).toContain('vote')
  })

  it('asks a member that refuses the vote field (a peer from before it) the plain acquire, then for its vote', async () => {
    const agent = countingEcho()
    // the claim waits for b's vote after c's plain grant: b answers 50 ms after it, which a busy
    // machine stretched past the default 100 ms wait (the claim then took the grants alone)
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, prerunVoteWaitMs: 5_000, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    // c answers an acquire with a vote as an older peer's schema would, and grants the plain one
    // before b answers: the claim, a majority of grants without a majority of votes, waits for b's vote
    let plainGranted!: () => void
    const cGranted = new Promise<void>(resolve => { plainGranted = resolve })
    const cOps: string[] = []
    const handle = c.tasks!.replica.handleLease.bind(c.tasks!.replica)
    c.tasks!.replica.handleLease = async (from, req) => {
      cOps.push(req.op === 'acquire' && req.vote !== undefined ? 'acquire+vote' : req.op)
      if (req.op === 'acquire' && req.vote !== undefined) return { status: 'ERROR', reason: 'bad request: unknown key "vote"' }
      const res = await handle(from, req)
      if (req.op === 'acquire') setTimeout(plainGranted, 50)
      return res
    }
    const ops = recordLeaseOps([b])
    const handleB = b.tasks!.replica.handleLease.bind(b.tasks!.replica)
    b.tasks!.replica.handleLease = async (from, req) => {
      if (req.op === 'acquire') await cGranted
      return await handleB(from, req)
    }
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'older peer' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    await everyStoreHolds(net, id, 'older peer')
    expect(ops.get(b)!.filter(op => op !== 'renew')).toEqual(['acquire+vote'])
    // granted the plain way, then given the certificate that a's and b's votes made
    expect(cOps.slice(0, 2)).toEqual(['acquire+vote', 'acquire'])
    expect(cOps.slice(2).every(op => op === 'vote' || op === 'commit' || op === 'renew')).toBe(true)
    expect(agent.runs).toBe(1)
    expect(a.tasks!.leases.stats.votedWithGrants).toBe(1)
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
    for (const node of others) expect(ops.get(node)!.filter(op => op.startsWith('acquire'))).toEqual(['acquire+vote'])
    expect(others.flatMap(n => ops.get(n)!)).toContain('vote')
    expect(agent.runs).toBe(1)
    expect(a.tasks!.leases.stats.votedWithGrants).toBe(0)
  })

  it('a round short of votes for want of answers is a lost lease, not a duplicate, and the one run is certified after', async () => {
    const agent = countingEcho()
    // the holder asks again while its lease lasts: 3 s, so the round outlasts it, and a loaded
    // machine's claim (a third of the lease to gather grants) still gets a majority first. Requests
    // time out after 1 s: at 300 ms a loaded machine's first acquire timed out, and the task was
    // stored, offered and claimed again, running the agent a second time
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, leaseMs: 3_000, rpcTimeoutMs: 1_000, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [a, ...others] = net.nodes as [AgentNode, ...AgentNode[]]
    // the others grant without voting, then fall silent on votes (paused, as a SIGSTOP leaves them):
    // a's own member voted with its grant and answers the round VOTED, for this very result
    recordLeaseOps(others, () => true)
    let silent = true
    for (const node of others) {
      interceptLease(node, async req => {
        while (silent && req.op === 'vote') await new Promise(resolve => setTimeout(resolve, 50))
        return undefined
      })
    }
    try {
      const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'one run' })
      const stats = a.tasks!.executor.stats
      await waitFor(() => stats.leaseLost + stats.duplicateExecutions > 0, { what: 'the holder to give up its round', timeoutMs: 20_000 })
      expect(stats.duplicateExecutions).toBe(0)
      expect(stats.leaseLost).toBeGreaterThanOrEqual(1)
      silent = false
      expect((await a.tasks!.service.waitFor(id, 30_000)).record.final?.state).toBe('completed')
      await everyStoreHolds(net, id, 'one run')
      expect(agent.runs).toBe(1)
      // the certified claim's history shows no error, whatever lapsed on the way
      const view = await a.tasks!.service.waitFor(id, 1_000)
      const won = summarize(view.record).history as Array<{ attempt: string, outcome: string, error?: string }>
      expect(won.filter(h => h.outcome === 'completed')).toEqual([expect.objectContaining({ attempt: view.record.final?.claimId, error: undefined })])
    } finally {
      silent = false
    }
  })

  it('a vote refused only because the claim\'s lease lapsed at the members, no later claim granted there, is a lost lease, not a duplicate', async () => {
    const agent = countingEcho()
    // votes and renewals reach the members after the lease (2 s) lapsed by their clocks, and the
    // members' own rounds on the lapsed task (decide) later still; the holder waits for those
    // answers (requests time out after 6 s)
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, leaseMs: 2_000, rpcTimeoutMs: 6_000, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [a, ...others] = net.nodes as [AgentNode, ...AgentNode[]]
    recordLeaseOps(others, () => true)
    const staleAnswers: unknown[] = []
    let late = true
    for (const node of others) {
      const replica = node.tasks!.replica
      const handle = replica.handleLease.bind(replica)
      replica.handleLease = async (from, req) => {
        if (!late || (req.op !== 'vote' && req.op !== 'renew' && req.op !== 'decide')) return await handle(from, req)
        await new Promise(resolve => setTimeout(resolve, 2_500))
        const res = await handle(from, req)
        if (req.op === 'vote' && res.status === 'STALE_TERM') staleAnswers.push(res)
        return res
      }
    }
    try {
      const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'lapsed' })
      const stats = a.tasks!.executor.stats
      await waitFor(() => stats.leaseLost + stats.duplicateExecutions > 0, { what: 'the holder to give up its round', timeoutMs: 20_000 })
      // both members refused the late vote for the lapse alone
      expect(staleAnswers).toEqual([{ status: 'STALE_TERM', lapsed: true }, { status: 'STALE_TERM', lapsed: true }])
      expect(stats.duplicateExecutions).toBe(0)
      expect(stats.leaseLost).toBeGreaterThanOrEqual(1)
      late = false
      expect((await a.tasks!.service.waitFor(id, 30_000)).record.final?.state).toBe('completed')
      await everyStoreHolds(net, id, 'lapsed')
    } finally {
      late = false
    }
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

  it('a member shown a vote it cannot verify grants and votes, and stores no certificate; one whose vote cannot be cast still grants', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const task = makeTask({ capability: 'echo', input: 'forged', submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    const record = newRecord(task, a.tasks!.membership.choose(task.id))
    const value = { state: 'completed' as const, claimId: 'claim1', resultHash: resultHash('forged') }
    // c never cast this vote: a signature b must check, and which fails
    const forged = { peer: c.peerId.toString(), generation: 0, epoch: 0, term: 1, value, sig: Buffer.alloc(64).toString('base64') }
    const acquire = { op: 'acquire' as const, id: task.id, epoch: 0, durationMs: 10_000, record }
    const res = await b.tasks!.replica.handleLease(a.peerId.toString(), { ...acquire, claimId: 'claim1', vote: { value, result: 'forged', size: 8, shown: [forged] } })
    expect(res.status).toBe('OK')
    expect(res.vote?.peer).toBe(b.peerId.toString())
    expect(res.committed).toBeUndefined()
    expect((await b.tasks!.replica.get(task.id)).record?.final).toBeUndefined()
    // a vote for another claim's result cannot be cast by this claim: the grant stands alone
    const alone = await c.tasks!.replica.handleLease(a.peerId.toString(), { ...acquire, claimId: 'claim2', vote: { value, result: 'forged', size: 8 } })
    expect(alone.status).toBe('OK')
    expect(alone.term).toBeGreaterThan(0)
    expect(alone.vote).toBeUndefined()
  })

  it('a member handed a pure agent\'s task runs it before its claim, which carries the vote', async () => {
    const agents = [0, 1, 2, 3, 4].map(() => countingEcho())
    net = await createTestnet(5, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, agents: [agents[i]!] } }) })
    await net.ready()
    const a = net.nodes[0]!
    await waitFor(() => net!.nodes.every(n => n.tasks!.presence.live().length === 5), { what: 'every node seeing the others' })
    const ids: string[] = []
    const handed = (): number => net!.nodes.reduce((n, node) => n + node.tasks!.handoff.stats.accepted, 0)
    // a is a member of about 3 placements in 5, so some of its tasks go by handoff. Submitted until
    // 20 are and one went so (at most 60): beside a loaded CI, 20 tasks once saw none taken
    for (let i = 0; i < 60 && (i < 20 || handed() === 0); i++) ids.push((await a.tasks!.service.submit({ capability: 'echo', input: i })).id)
    for (const id of ids) expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    // a's side of its handoffs, so that a failure says why none was taken
    expect({ handed: handed() >= 1, sent: a.tasks!.handoff.stats }).toMatchObject({ handed: true })
    // only handed tasks are claimed by the others (a claims its own), and those claims carried their votes
    expect(net.nodes.slice(1).reduce((n, node) => n + node.tasks!.leases.stats.votedWithGrants, 0)).toBeGreaterThanOrEqual(1)
    expect(agents.reduce((n, x) => n + x.runs, 0)).toBe(ids.length)
  })

  it('a claim with its vote that falls short gives its grants back; the task is stored, offered and certified once', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...TASKS, agents: [echoAgent] } })
    await net.ready()
    const [a, ...others] = net.nodes as [AgentNode, ...AgentNode[]]
    // the others refuse the first claim, which carries the vote: a keeps its own vote, alone
    for (const node of others) {
      const handle = node.tasks!.replica.handleLease.bind(node.tasks!.replica)
      node.tasks!.replica.handleLease = async (from, req) => req.op === 'acquire' && req.vote !== undefined ? { status: 'ERROR', reason: 'refused by the test' } : await handle(from, req)
    }
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'after a short claim' })
    expect((await a.tasks!.service.waitFor(id, 20_000)).record.final?.state).toBe('completed')
    await everyStoreHolds(net, id, 'after a short claim')
    expect(a.tasks!.leases.stats.votedWithGrants).toBe(0)
    // a's lone vote names the claim that fell short, whose grant a gave back: another claim's votes made the certificate
    const { record } = await a.tasks!.replica.get(id)
    expect(record?.attempts.length).toBeGreaterThanOrEqual(2)
    expect(record?.attempts[0]?.outcome).toBe('released')
  })

  it('claims and runs the usual way a pure agent whose run before the claim is too slow, or whose result is too large for it', async () => {
    let runs = 0
    // ignores its abort: a run given up on goes on, and its result is not used
    const slow: Agent = { name: 'slow', capabilities: [{ name: 'slow', description: 'takes its time' }], pure: true, run: async ctx => { runs++; await new Promise(resolve => setTimeout(resolve, 300)); return ctx.input } }
    const large: Agent = { name: 'large', capabilities: [{ name: 'large', description: 'a result past maxInlineResultBytes' }], pure: true, run: async () => { runs++; return 'x'.repeat(200) } }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, prerunMaxMs: 50, maxInlineResultBytes: 100, agents: i === 0 ? [slow, large] : [] } }) })
    await net.ready()
    const a = net.nodes[0]!
    const slowTask = await a.tasks!.service.submit({ capability: 'slow', input: 'in time' })
    expect((await a.tasks!.service.waitFor(slowTask.id, 10_000)).result?.value).toBe('in time')
    const largeTask = await a.tasks!.service.submit({ capability: 'large', input: null })
    expect((await a.tasks!.service.waitFor(largeTask.id, 10_000)).result?.value).toBe('x'.repeat(200))
    await everyStoreHolds(net, largeTask.id, 'x'.repeat(200))
    expect(runs).toBe(4)
    expect(a.tasks!.leases.stats.votedWithGrants).toBe(0)
  })

  it('takes a majority of grants without their votes after prerunVoteWaitMs, not the claim\'s give-up, when a member is silent', async () => {
    const agent = countingEcho()
    // the give-up (a third of the lease) and an RPC's timeout both far past the wait for the task
    const tasks = { ...TASKS, leaseMs: 30_000, rpcTimeoutMs: 8_000, prerunVoteWaitMs: 100 }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    // c grants without voting; b does not answer its claim
    recordLeaseOps([c], () => true)
    let wake!: () => void
    const silence = new Promise<void>(resolve => { wake = resolve })
    const handleB = b.tasks!.replica.handleLease.bind(b.tasks!.replica)
    b.tasks!.replica.handleLease = async (from, req) => {
      if (req.op === 'acquire') await silence
      return await handleB(from, req)
    }
    try {
      // without the cap the submit waits for b's request to time out (8 s); with it, about 100 ms
      const t0 = Date.now()
      const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'b is silent' })
      expect(Date.now() - t0).toBeLessThan(tasks.rpcTimeoutMs / 2)
      expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
      expect(agent.runs).toBe(1)
    } finally {
      wake()
    }
  })
})
