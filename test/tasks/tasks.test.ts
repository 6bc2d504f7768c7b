import { afterEach, describe, expect, it } from 'vitest'
import { countWords } from '../../node/agents/basic.js'
import { echoAgent, failAgent, sleepAgent } from '../../node/agents/basic.js'
import { BUILTIN_AGENTS } from '../../node/agents/index.js'
import { claimRetryFloorMs } from '../../node/tasks/claimer.js'
import { eventLoopLag } from '../../node/tasks/event-loop-lag.js'
import { tasksTopic } from '../../protocols/gossip/index.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { gatedAgent } from '../helpers/gated.js'
import { submitRetrying } from '../helpers/retry.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'

describe('tasks over gossip', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('a wait that hears no notice asks one placement member a poll, and still gets the result', async () => {
    const { agent: gated, open } = gatedAgent('done', 64)
    // a long lease: the sweeper's refresh of the waiting node's copy (a lease after it was kept) stays out of the count
    const tasks = { ...FAST_TASKS, leaseMs: 30_000, claimLagLimitMs: 5_000, waitPollBaseMs: 30, waitPollCapMs: 30 }
    // the waiting node runs nothing and is no member of the task's placement, so each poll is a request
    net = await createTestnet(4, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 1 ? [gated] : [] } }) })
    await net.ready()
    const [a, b] = [net.nodes[0]!, net.nodes[1]!]
    const s = a.tasks!.service
    let id = ''
    for (let i = 0; id === ''; i++) {
      if (i > 50) throw new Error('no placement without the submitter in 50 tries')
      const r = await s.submit({ capability: 'gated', input: i })
      if (!(await s.get(r.id)).record.placement.members.includes(a.peerId.toString())) id = r.id
    }
    await waitFor(() => b.tasks!.executor.running().includes(id), { what: 'the task to run' })
    const waiting = s.waitFor(id, 30_000)
    await waitFor(() => s.stats.waitPolls >= 2, { what: 'the first polls' })
    const polls0 = s.stats.waitPolls
    const sent0 = a.tasks!.stats().rpc as { records: { requestsSent: number } }
    await waitFor(() => s.stats.waitPolls >= polls0 + 8, { what: 'eight more polls' })
    const polls = s.stats.waitPolls - polls0
    const sent = (a.tasks!.stats().rpc as { records: { requestsSent: number } }).records.requestsSent - sent0.records.requestsSent
    // one member a poll (asking all three was three requests a poll); the slack is the poll in flight
    expect(sent).toBeLessThanOrEqual(polls + 1)
    expect(sent).toBeGreaterThanOrEqual(polls - 1)
    open()
    const view = await waiting
    expect(view.record.final?.state).toBe('completed')
    expect(view.result?.value).toBe('done')
  })

  it('runs a task on the only node that offers its capability, and the submitter gets the result', async () => {
    net = await createTestnet(3, {
      baseDir: await tmp(),
      perNode: i => ({ tasks: { ...FAST_TASKS, agents: i === 2 ? [echoAgent] : [sleepAgent] } })
    })
    await net.ready()
    const [a, , c] = net.nodes
    const { id, created } = await a!.tasks!.service.submit({ capability: 'echo', input: { hello: 'mesh' } })
    expect(created).toBe(true)
    const view = await a!.tasks!.service.waitFor(id, 10_000)
    expect(view.record.final?.state).toBe('completed')
    expect(view.record.final?.peer).toBe(c!.peerId.toString())
    expect(view.result?.value).toEqual({ hello: 'mesh' })
  })

  it('returns the existing task for a repeated idempotency key', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), tasks: FAST_TASKS })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const first = await s.submit({ capability: 'echo', input: 1, idempotencyKey: 'order-42' })
    const second = await s.submit({ capability: 'echo', input: 1, idempotencyKey: 'order-42' })
    expect(second).toEqual({ id: first.id, created: false })
    const third = await s.submit({ capability: 'echo', input: 1 })
    expect(third.id).not.toBe(first.id)
  })

  it('answers "created" once for submits of one idempotency key at the same time, alone or in a bulk', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: FAST_TASKS })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    // attempts to spare: a saturated machine lapsed three 500 ms leases of one echo in a row
    const same = { capability: 'echo', input: { n: 7 }, idempotencyKey: 'at-once', maxAttempts: 20 }
    const answers = await Promise.all(Array.from({ length: 10 }, async () => s.submit(same)))
    expect(new Set(answers.map(a => a.id)).size).toBe(1)
    expect(answers.filter(a => a.created)).toHaveLength(1)
    // a bulk with a key beside two single submits of it, and a key only the bulk names
    const mixed = { capability: 'echo', input: { n: 8 }, idempotencyKey: 'bulk-and-one', maxAttempts: 20 }
    const [bulk, one, two] = await Promise.all([s.submitMany([mixed, { ...same, idempotencyKey: 'bulk-only' }]), s.submit(mixed), s.submit(mixed)])
    const made = [bulk[0], one, two].filter(a => a !== undefined && 'created' in a && a.created)
    expect(made).toHaveLength(1)
    expect(new Set([bulk[0], one, two].map(a => (a as { id: string }).id)).size).toBe(1)
    expect(bulk[1]).toMatchObject({ created: true })
    // at the same time with other options: the submit that waited for the creation is refused, alone or in a bulk
    const first = { capability: 'echo', input: { n: 9 }, idempotencyKey: 'other-options', maxAttempts: 20 }
    const other = { ...first, maxAttempts: 19 }
    const [made1, refused, inBulk] = await Promise.allSettled([s.submit(first), s.submit(other), s.submitMany([other])])
    expect(made1).toMatchObject({ status: 'fulfilled', value: { created: true } })
    expect(refused).toMatchObject({ status: 'rejected', reason: { name: 'IdempotencyConflictError' } })
    expect(inBulk).toMatchObject({ status: 'fulfilled', value: [{ error: { name: 'IdempotencyConflictError' } }] })
    // one task, and it ran
    const done = await s.waitFor(answers[0]!.id, 30_000)
    expect(done.record.final?.state).toBe('completed')
  }, 60_000)

  it('spreads mapreduce subtasks over several peers and matches a local count', async () => {
    // a 5 s lease: this test is about spreading work, and a busy machine must not expire the planner's lease
    net = await createTestnet(5, { baseDir: await tmp(), tasks: { ...FAST_TASKS, leaseMs: 5_000, agents: BUILTIN_AGENTS } })
    await net.ready()
    // "constructor" and "toString" are words, not Object's methods
    const text = Array.from({ length: 400 }, (_, i) => `word${i % 37} alpha beta${i % 5} gamma${i % 10 === 0 ? ' constructor toString' : ''}`).join(' ')
    expect(countWords('The constructor built the house')).toEqual({ the: 2, constructor: 1, built: 1, house: 1 })
    const s = net.nodes[1]!.tasks!.service
    // a 503 of a saturated machine's RPC timeouts is tried again, as a client would
    const { id } = await submitRetrying(async () => s.submit({ capability: 'mapreduce', input: { text, chunks: 12 }, idempotencyKey: 'mapreduce-once' }))
    const view = await s.waitFor(id, 120_000)
    expect(view.record.final?.state).toBe('completed')
    const result = view.result?.value as { counts: Record<string, number>, words: number }
    expect(result.counts).toEqual(countWords(text))
    expect([result.counts.constructor, result.counts.tostring, result.words]).toEqual([40, 40, 1_680])
    const children = (await Promise.all(net.nodes.map(async n => n.tasks!.service.list({ parent: id }))))
      .flat()
      .filter((r, i, all) => all.findIndex(o => o.task.id === r.task.id) === i)
    // 12: a planner that lost its lease on a loaded machine is run again and waits for the chunks
    // its journal names; a chunk whose id a failed journal write left out is submitted again
    expect(children.length).toBeGreaterThanOrEqual(12)
    const executors = new Set(children.map(r => r.final?.peer))
    expect(executors.size).toBeGreaterThanOrEqual(2)
    // a plain string is the text, as the text agents take it (`--input @book.txt`)
    const plain = await s.submit({ capability: 'mapreduce', input: text })
    const counted = await s.waitFor(plain.id, 120_000)
    expect((counted.result?.value as { counts: Record<string, number> }).counts).toEqual(countWords(text))
  })

  it('still runs a task whose offer and announcements were lost (the pull path)', async () => {
    net = await createTestnet(3, {
      baseDir: await tmp(),
      // re-announcement is pushed far out: only the pull path can bring the task to node 2
      perNode: i => ({ tasks: { ...FAST_TASKS, reannounceBaseMs: 60_000, reannounceCapMs: 60_000, agents: i === 2 ? [echoAgent] : [] } })
    })
    await net.ready()
    const submitter = net.nodes[0]!
    const pubsub = submitter.libp2p.services.pubsub
    const publish = pubsub.publish.bind(pubsub)
    let dropped = 0
    // composition, not a branch in node/: this node's offers and announcements never leave it
    pubsub.publish = async (topic: string, data?: Uint8Array) => {
      if (topic === tasksTopic('default', 'echo')) { dropped++; return { recipients: [] } }
      return publish(topic, data)
    }
    submitter.tasks!.offerer.offer = () => { dropped++ }
    // nor handed to the member that runs it
    submitter.tasks!.service.handoff = undefined
    const { id } = await submitter.tasks!.service.submit({ capability: 'echo', input: 'lost' })
    const view = await submitter.tasks!.service.waitFor(id, 10_000)
    // at least the submit's own offer; a busy machine may have the node offer it once more, lost too
    expect(dropped).toBeGreaterThanOrEqual(1)
    expect(view.record.final?.state).toBe('completed')
    expect(net.nodes[2]!.tasks!.claimer.stats.pulledTasks).toBeGreaterThan(0)
    expect(net.nodes[2]!.tasks!.claimer.stats.announcementsSeen).toBe(0)
  })

  it('retries a failing task with backoff until it succeeds', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [failAgent] } })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'fail', input: { times: 2 }, maxAttempts: 3 })
    const view = await s.waitFor(id, 30_000)
    expect(view.record.final?.state).toBe('completed')
    expect(view.result?.value).toEqual({ attempt: 3 })
    // partial claims given back (two ranks racing) are 'released' and do not count
    expect(view.record.attempts.map(a => a.outcome).filter(o => o !== 'released')).toEqual(['failed', 'failed', 'completed'])
  })

  it('dead-letters after maxAttempts, at once for UnrecoverableTaskError, and redrives', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [failAgent] } })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const spent = await s.submit({ capability: 'fail', input: { times: 5 }, maxAttempts: 2 })
    const fatal = await s.submit({ capability: 'fail', input: { times: 0, unrecoverable: true }, maxAttempts: 3 })
    const deadSpent = await s.waitFor(spent.id, 10_000)
    const deadFatal = await s.waitFor(fatal.id, 10_000)
    expect(deadSpent.record.final?.state).toBe('dead')
    expect(deadSpent.record.final?.reason).toMatch(/^failed 2 of 2 attempts/)
    expect(deadFatal.record.final?.state).toBe('dead')
    expect(deadFatal.record.attempts.filter(a => a.outcome !== 'released')).toHaveLength(1)
    const other = net.nodes[1]!.tasks!.service
    await waitFor(async () => (await other.deadLetters()).length === 2, { what: 'both in the other node\'s dead-letter list' })
    const entry = (await other.deadLetters()).find(r => r.task.id === spent.id)
    expect(entry?.attempts.filter(a => a.outcome !== 'released').map(a => a.error)).toEqual([expect.stringMatching(/failing attempt 1/), expect.stringMatching(/failing attempt 2/)])
    await other.redrive(spent.id)
    const again = await s.waitFor(spent.id, 10_000)
    expect(again.record.final?.state).toBe('dead')
    expect(again.record.generation).toBe(1)
    expect(again.record.attempts.filter(a => a.outcome !== 'released')).toHaveLength(4)
    await other.drop(fatal.id)
    expect((await other.deadLetters()).map(r => r.task.id)).toEqual([spent.id])
  })

  it('a node outside the placement that holds a dead copy sees a redrive made elsewhere (by its notice, else by its sweeper), redrives from the placement\'s generation, and waits get each generation\'s outcome', async () => {
    // node 0 runs nothing and keeps only the submitter's copy: a cache, final and settled once dead
    net = await createTestnet(4, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, agents: i === 0 ? [] : [failAgent] } }) })
    await net.ready()
    const a = net.nodes[0]!
    const s = a.tasks!.service
    let id = ''
    for (let i = 0; id === ''; i++) {
      if (i > 50) throw new Error('no placement without the submitter in 50 tries')
      const r = await s.submit({ capability: 'fail', input: { times: 5 }, maxAttempts: 2 })
      if (!(await s.get(r.id)).record.placement.members.includes(a.peerId.toString())) id = r.id
    }
    // two failed attempts, their backoffs and a sweep's decision: over 10 s beside a loaded test run
    const deadIn = async (generation: number): Promise<void> => {
      expect((await s.waitFor(id, 30_000)).record.final).toMatchObject({ state: 'dead', generation })
    }
    await deadIn(0)
    // redriven through a member: node 0 hears the notice and reads the placement again. The agent
    // fails every attempt, and a redrive counts them afresh: dead again, in the next generation
    const member = net.nodes.find(n => n !== a)!
    const m = member.tasks!.service
    await m.redrive(id)
    await waitFor(async () => (await s.get(id)).record.generation === 1, { what: 'node 0\'s copy at generation 1' })
    await deadIn(1)
    expect((await s.get(id)).record.final?.reason).toMatch(/^failed 2 of 2 attempts/)
    // node 0 hears nothing and sweeps nothing: a redrive elsewhere leaves its copy dead in generation 1
    // (a read there asks the placement, as for any dead end: test/tasks/redrive-runner.test.ts)
    s.stop()
    await a.tasks!.sweeper.stop()
    await m.redrive(id)
    await waitFor(async () => (await m.get(id)).record.final?.generation === 2, { what: 'generation 2 dead at the member' })
    expect((await a.tasks!.replica.get(id)).record?.final?.generation).toBe(1)
    // a redrive through node 0 asks for the placement's generation, not its copy's
    expect((await s.redrive(id)).record.generation).toBe(3)
    await deadIn(3)
    // a notice lost: the sweeper reads the dead copy from the placement again
    a.tasks!.sweeper.start()
    await m.redrive(id)
    await waitFor(async () => (await s.get(id)).record.generation === 4, { what: 'node 0\'s copy read again by its sweeper' })
    s.start()
    await deadIn(4)
  })

  it('a member whose final copy lacks its result reads it from a live member, though the first other member is down for good', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [echoAgent] } })
    await net.ready()
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'echo', input: { n: 7 } })
    const done = await net.nodes[0]!.tasks!.service.waitFor(id, 10_000)
    expect(done.result?.value).toEqual({ n: 7 })
    // node 2 keeps the certified final state but loses the result (a commit that brought none)
    // (a holder's own vote stores the result before the commit brings the final state)
    await waitFor(async () => (await net!.nodes[2]!.store.results.get(id)) !== undefined && (await net!.nodes[2]!.store.tasks.get(id))?.final !== undefined, { what: 'the result and the final state on node 2' })
    await net.nodes[2]!.store.results.del(id)
    await net.nodes[2]!.stop()
    const reader = await net.restartNode(2, { tasks: { ...FAST_TASKS, agents: [echoAgent] } })
    await net.ready()
    expect((await reader.store.tasks.get(id))?.final?.state).toBe('completed')
    // the member a wait asks first, every request, is down
    const me = reader.peerId.toString()
    const first = done.record.placement.members.filter(m => m !== me)[0]
    await net.nodes.find(n => n.peerId.toString() === first)!.stop()
    // one poll a request at the default waitPollBaseMs, as a client that waits a second at a time
    // (and asks again: a loaded machine's first read from a live member may take longer)
    await waitFor(async () => ((await reader.tasks!.service.waitFor(id, 1_000)).result?.value as { n?: number } | undefined)?.n === 7, { what: 'the result read from a live member', timeoutMs: 10_000 })
  })

  it('cancel aborts the running agent at once with a TaskCanceledError and the task is never retried', async () => {
    // a lease of 30 s renews after 10 s: the cancel itself (its notice, or the canceling node's own
    // executor), not a renewal answered CANCELED, aborts the run
    const reasons: string[] = []
    const watched: Agent<{ ms: number }> = { ...sleepAgent, run: async ctx => { ctx.signal.addEventListener('abort', () => { reasons.push(ctx.signal.reason?.name) }); return await sleepAgent.run(ctx) } }
    net = await createTestnet(2, { baseDir: await tmp(), tasks: { ...FAST_TASKS, leaseMs: 30_000, agents: [watched] } })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'sleep', input: { ms: 30_000 } })
    // the executor starts once the grants are in, a moment after the members record the attempt
    await waitFor(() => net!.nodes.some(n => n.tasks!.executor.running().includes(id)), { what: 'the task to start' })
    const holder = net.nodes.find(n => n.tasks!.executor.running().includes(id))
    const view = await s.cancel(id)
    expect(view.record.final?.state).toBe('canceled')
    await waitFor(() => !holder!.tasks!.executor.running().includes(id), { what: 'the holder to stop the agent' })
    expect(holder!.tasks!.executor.stats.completed).toBe(0)
    expect(reasons).toEqual(['TaskCanceledError'])
    // a canceled run is not a failure (it used to be reported as one, and told in a 'failed' notice)
    expect(holder!.tasks!.executor.stats.failed).toBe(0)
    await expect(net.nodes[1]!.tasks!.replica.handleLease(net.nodes[1]!.peerId.toString(), { op: 'acquire', id, epoch: view.record.placement.epoch, claimId: 'late', durationMs: 500 })).resolves.toMatchObject({ status: view.record.placement.members.includes(net.nodes[1]!.peerId.toString()) ? 'FINISHED' : 'NOT_MEMBER' })
  })

  it('a run whose agent ignores its abort ends abortGraceMs after its timeout, or after its cancel: the attempt fails or the task is canceled, and the slot frees', async () => {
    // never settles and never looks at its signal, as an agent that calls a service without it
    const started: string[] = []
    const hang: Agent<string> = { name: 'hang', capabilities: [{ name: 'hang' }], concurrency: 1, run: async ctx => { started.push(ctx.task.id); return await new Promise<never>(() => {}) } }
    net = await createTestnet(2, { baseDir: await tmp(), tasks: { ...FAST_TASKS, abortGraceMs: 300, agents: [hang] } })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const holderOf = (id: string): AgentNode | undefined => net!.nodes.find(n => n.tasks!.executor.running().includes(id))
    const timedOut = await s.submit({ capability: 'hang', input: 'timeout', maxAttempts: 1, timeoutMs: 400 })
    await waitFor(() => holderOf(timedOut.id) !== undefined, { what: 'the first task to start' })
    const first = holderOf(timedOut.id)!
    const view = await s.waitFor(timedOut.id, 15_000)
    expect(view.record.final?.state).toBe('dead')
    expect(view.record.final?.reason).toMatch(/still running 300 ms after its run was aborted \(The operation was aborted due to timeout\)/)
    await waitFor(() => first.tasks!.runtime.freeSlots().hang === 1, { what: () => `the slot back (${JSON.stringify(first.tasks!.runtime.freeSlots())})` })
    expect(first.tasks!.executor.stats.runsAbandoned).toBe(1)
    // a long timeout: the cancel, not the timeout, ends this one
    const canceled = await s.submit({ capability: 'hang', input: 'cancel', timeoutMs: 600_000 })
    await waitFor(() => holderOf(canceled.id) !== undefined, { what: 'the second task to start' })
    const second = holderOf(canceled.id)!
    expect((await s.cancel(canceled.id)).record.final?.state).toBe('canceled')
    await waitFor(() => !second.tasks!.executor.running().includes(canceled.id) && second.tasks!.runtime.freeSlots().hang === 1, { what: 'the canceled run ended and its slot back' })
    expect(second.tasks!.executor.stats.failed).toBe(second === first ? 1 : 0)
    expect(net.nodes.reduce((n, node) => n + node.tasks!.executor.stats.runsAbandoned, 0)).toBe(2)
    // each ran once: a timed-out attempt with maxAttempts 1 is not retried, a canceled task never
    expect(started.sort()).toEqual([timedOut.id, canceled.id].sort())
  })

  it('drops a peer from presence after three silent intervals', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: FAST_TASKS })
    await net.ready()
    const gone = net.nodes[2]!
    await gone.stop()
    // (the expiry after exactly three intervals is a unit test of presence with an injected clock;
    // here, on a busy machine, heartbeats themselves can run late)
    await waitFor(() => !net!.nodes[0]!.tasks!.presence.isLive(gone.peerId.toString()), { what: 'the stopped peer to drop out' })
  })

  it('every member of the placement, and the submitter, lists a finished task as completed', async () => {
    net = await createTestnet(5, { baseDir: await tmp(), tasks: { ...FAST_TASKS, leaseMs: 5_000, agents: [echoAgent] } })
    await net.ready()
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'echo', input: 'everywhere' })
    const { record } = await net.nodes[0]!.tasks!.service.waitFor(id, 10_000)
    const listing = net.nodes.filter((n, i) => i === 0 || record.placement.members.includes(n.peerId.toString()))
    expect(listing.length).toBeGreaterThanOrEqual(3)
    await waitFor(async () => {
      const lists = await Promise.all(listing.map(async n => n.tasks!.service.list({ state: 'completed' })))
      return lists.every(list => list.some(r => r.task.id === id))
    }, { what: 'the members and the submitter to list the task as completed' })
  })

  it('keeps a task only on its replicas, its submitter and the first keepRanks peers; any node still answers for it', async () => {
    // presence every 3 s: with 150 ms, then 1 s, peers of a busy machine dropped out of each other's
    // views, and a peer that sees few others ranks itself first
    net = await createTestnet(8, { baseDir: await tmp(), tasks: { ...FAST_TASKS, leaseMs: 5_000, presenceIntervalMs: 3_000, agents: [echoAgent], claimRanks: 1, keepRanks: 1 } })
    await net.ready(60_000)
    // whether every node saw all 8 live throughout: the rule ranks by those views
    let whole = true
    const views = setInterval(() => { if (net!.nodes.some(n => n.tasks!.presence.liveIds().length < 8)) whole = false }, 100)
    const s = net.nodes[0]!.tasks!.service
    // 8 nodes in one process on a saturated machine: the first streams may open past rpcTimeoutMs
    const { id } = await submitRetrying(async () => s.submit({ capability: 'echo', input: 'kept where needed' }))
    expect((await s.waitFor(id, 60_000)).record.final?.state).toBe('completed')
    const holding = async (): Promise<AgentNode[]> => {
      const out: AgentNode[] = []
      for (const node of net!.nodes) if ((await node.tasks!.replica.get(id)).record !== undefined) out.push(node)
      return out
    }
    // a wait wakes once a majority stored the final state (on a submitter that is a member, its own
    // commit): the last member's copy may still be on its way
    await waitFor(async () => (await holding()).length >= 3, { what: 'the task on its three replicas', timeoutMs: 20_000 })
    const holders = await holding()
    clearInterval(views)
    // the 3 replicas and the submitter, plus the claimer and at most one peer whose presence view
    // (free slots change under load) ranked itself first too; before, all 8 peers stored every task.
    // Under a load that stalls the process past presence expiry, each peer that lost sight of the
    // others ranks itself first: beside a benchmark all 8 kept it, views broken
    expect(holders.length).toBeGreaterThanOrEqual(3)
    if (whole) expect(holders.length).toBeLessThanOrEqual(6)
    const other = net.nodes.find(n => !holders.includes(n))!
    // asked of the members its own view names: on a busy machine one read may find none answering in time
    let value: unknown
    await waitFor(async () => {
      value = (await other.tasks!.service.get(id).catch(() => undefined))?.result?.value
      return value !== undefined
    }, { what: 'a node that keeps no copy to answer for the task', timeoutMs: 30_000 })
    expect(value).toBe('kept where needed')
  })

  it('a wait asks the replicas less and less often while no notice comes', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [sleepAgent], pullIntervalMs: 60_000, waitPollBaseMs: 100, waitPollCapMs: 400 } })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'sleep', input: { ms: 30_000 } })
    const polls = s.stats.waitPolls
    const started = Date.now()
    const view = await s.waitFor(id, 2_000)
    const asked = s.stats.waitPolls - polls
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900)
    expect(view.record.final).toBeUndefined()
    // 100, 200, 400, 400... ms apart: about 7 asks in 2 s, where a fixed 100 ms poll made 20; a
    // saturated machine (CI beside a 5-daemon bench) made 2, each ask slow to answer
    expect(asked).toBeGreaterThanOrEqual(2)
    expect(asked).toBeLessThanOrEqual(9)
    await s.cancel(id)
  })

  it('a node whose claim of a task failed waits before it claims it again, twice as long after each failure in a row', async () => {
    // the checks below run within the first wait: a second, longer than a loaded machine's stalls
    const base = 1_000
    // only node 3 can run the task; nothing but this test's calls makes it claim (no pulls, no re-announcements)
    const tasks = { ...FAST_TASKS, leaseMs: 5_000, claimRetryBaseMs: base, claimLagLimitMs: 5_000, pullIntervalMs: 60_000, reannounceBaseMs: 60_000, reannounceCapMs: 60_000 }
    net = await createTestnet(4, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 3 ? [echoAgent] : [] } }) })
    await net.ready()
    const claimant = net.nodes[3]!
    const claimer = claimant.tasks!.claimer
    const task = makeTask({ capability: 'echo', input: 'split', submitter: net.nodes[0]!.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    const record = newRecord(task, net.nodes[0]!.tasks!.membership.choose(task.id))
    const { placement } = record
    await net.nodes[0]!.tasks!.service.storeOnPlacement(record)
    // two members hold a lease for a claimant that is not there: every claim gets one grant at most
    const blocked = placement.members.filter(m => m !== claimant.peerId.toString()).slice(0, 2)
    const member = (peer: string): AgentNode => net!.nodes.find(n => n.peerId.toString() === peer)!
    // the submit is answered once a majority stored the record: the third may still be writing it
    await waitFor(async () => (await Promise.all(placement.members.map(async m => (await member(m).tasks!.replica.get(task.id)).record))).every(r => r !== undefined), { what: 'every member to hold the record' })
    const hold = async (op: 'acquire' | 'release'): Promise<void> => {
      for (const peer of blocked) {
        const res = await member(peer).tasks!.replica.handleLease('elsewhere', op === 'acquire' ? { op, id: task.id, epoch: placement.epoch, claimId: 'blocker', durationMs: 60_000 } : { op, id: task.id, epoch: placement.epoch, claimId: 'blocker', term: 1, ran: false })
        expect(res.status).toBe('OK')
      }
    }
    await hold('acquire')
    const failAt = async (attempts: number): Promise<{ before: number, at: number, failures: number }> => {
      const before = Date.now()
      await claimer.consider(task, placement)
      await waitFor(() => claimer.stats.claimsDenied >= attempts, { what: () => `claim ${attempts} denied (${JSON.stringify(claimer.stats)})` })
      const retry = claimer.retryOf(task.id)!
      expect(Date.now()).toBeLessThan(retry.at)
      return { before, ...retry }
    }
    const first = await failAt(1)
    expect(first.failures).toBe(1)
    expect(first.at - first.before).toBeGreaterThanOrEqual(base)
    // asked again at once: no claim, counted
    await claimer.consider(task, placement)
    expect(claimer.stats).toMatchObject({ claimAttempts: 1, claimsBackedOff: 1 })
    await waitFor(() => Date.now() > first.at, { what: 'the first wait to pass' })
    const second = await failAt(2)
    expect(second.failures).toBe(2)
    expect(second.at - second.before).toBeGreaterThanOrEqual(2 * base)
    expect(claimer.stats.claimAttempts).toBe(2)
    // the members are free again: the next claim after the wait wins and runs the task
    await hold('release')
    await waitFor(() => Date.now() > second.at, { what: 'the second wait to pass' })
    await claimer.consider(task, placement)
    expect((await claimant.tasks!.service.waitFor(task.id, 10_000)).record.final?.state).toBe('completed')
    expect(claimer.retryOf(task.id)).toBeUndefined()
    // the least wait doubles with each failure in a row, up to a lease
    expect([1, 2, 3, 5, 6, 1_000].map(n => claimRetryFloorMs(n, 250, 5_000))).toEqual([250, 500, 1_000, 4_000, 5_000, 5_000])
  })

  it('keeps a copy of what an agent journals and returns: the agent changing its objects afterwards changes nothing stored', async () => {
    let late: (() => void) | undefined
    const mutating: Agent = {
      name: 'mutating',
      capabilities: ['mutating'],
      run: async ctx => {
        const step = await ctx.step('list', async () => ({ items: [1] }))
        step.items.push(2)
        const result = { out: [1] }
        late = () => { result.out.push(99) }
        return result
      }
    }
    // one node: every request of the run is a local call into its own replica, with the agent's objects
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [mutating] } })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'mutating', input: null })
    expect((await s.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    late?.()
    const { record, result } = await net.nodes[0]!.tasks!.replica.get(id)
    expect(record?.journal?.list).toEqual({ items: [1] })
    expect(result?.value).toEqual({ out: [1] })
  })

  it('an agent\'s slot frees when it returns: the next task runs while the first one\'s result is still on its way to disk', async () => {
    const runs: string[] = []
    const oneAtATime: Agent = { name: 'single', capabilities: ['single'], concurrency: 1, run: async ctx => { runs.push(String(ctx.input)); return ctx.input } }
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [oneAtATime] } })
    await net.ready()
    const node = net.nodes[0]!
    const s = node.tasks!.service
    // the first task's writes after its run (its vote, the certificate) wait on a slow disk
    let first: string | undefined
    const disk = slowDisk(node, id => id === first && runs.length > 0)
    first = (await s.submit({ capability: 'single', input: 'one' })).id
    const second = (await s.submit({ capability: 'single', input: 'two' })).id
    try {
      await waitFor(() => runs.length === 2, { timeoutMs: 10_000, what: () => `the second run while the first result is held (runs: ${runs.join(', ')}, writes held: ${disk.waited()})` })
      expect(disk.waited()).toBeGreaterThan(0)
      expect((await node.tasks!.replica.get(first)).record?.final).toBeUndefined()
    } finally {
      disk.open()
    }
    for (const id of [first, second]) expect((await s.waitFor(id, 10_000)).record.final?.state).toBe('completed')
  })

  it('keeps a slot while its result reports once maxPendingReports are on their way: finished results do not pile up', async () => {
    const ran = new Set<string>()
    const oneAtATime: Agent = { name: 'single', capabilities: ['single'], concurrency: 1, run: async ctx => { ran.add(ctx.task.id); return ctx.input } }
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [oneAtATime], maxPendingReports: 1 } })
    await net.ready()
    const node = net.nodes[0]!
    const s = node.tasks!.service
    // every write after a task's run (its vote, the certificate) waits on a slow disk
    const disk = slowDisk(node, id => ran.has(id))
    const ids = []
    for (const input of ['one', 'two', 'three']) ids.push((await s.submit({ capability: 'single', input })).id)
    const executor = node.tasks!.executor
    try {
      // the first run gave its slot back while reporting; the second keeps it: one report is on its way already
      await waitFor(() => executor.stats.slotsKeptForReports === 1, { timeoutMs: 10_000, what: () => `a slot kept while the first result reports (ran ${ran.size}, ${JSON.stringify(executor.stats)})` })
      expect(ran.size).toBe(2)
      expect(executor.reportsPending).toBe(2)
      expect(node.tasks!.runtime.freeSlots().single).toBe(0)
    } finally {
      disk.open()
    }
    for (const id of ids) expect((await s.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    expect(ran.size).toBe(3)
  })

  it('takes no new claims while its event loop lags, and claims once it recovers', async () => {
    // a sample every 250 ms, past the 200 ms limit: the time between samples is not lag, or an idle
    // node would never claim
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [echoAgent], claimLagLimitMs: 200, lagSampleMs: 250 } })
    await net.ready()
    const node = net.nodes[0]!
    expect(eventLoopLag.sampleMs).toBe(250)
    // real lag: the loop is blocked for 600 ms at a time, as a machine under a burst would be; past
    // what the 500 ms lease survives (333 ms from its renewal to its expiry), so even an idle node defers
    const blocker = setInterval(() => { const until = Date.now() + 600; while (Date.now() < until); }, 50)
    try {
      await waitFor(() => eventLoopLag.currentMs() > 450, { what: 'the lag to show' })
      const { id } = await node.tasks!.service.submit({ capability: 'echo', input: 'later' })
      await waitFor(() => node.tasks!.claimer.stats.claimsDeferred >= 2, { what: () => `claims deferred while lagging (${JSON.stringify(node.tasks!.claimer.stats)}, lag ${eventLoopLag.currentMs()} ms)`, timeoutMs: 10_000 })
      expect(node.tasks!.claimer.stats.claimAttempts).toBe(0)
      clearInterval(blocker)
      const view = await node.tasks!.service.waitFor(id, 10_000)
      expect(view.result?.value).toBe('later')
      expect(node.tasks!.claimer.stats.claimAttempts).toBeGreaterThanOrEqual(1)
    } finally {
      clearInterval(blocker)
    }
  })
})

describe('claims of a node that runs nothing, while its event loop lags', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('an idle node whose lag a lease survives still claims, one task at a time: lag it does not cause does not fall by waiting', async () => {
    // a 3 s lease renews at 1 s and expires at 3 s: 400 ms of lag is past claimLagLimitMs, not past that
    // an agent of 8 slots that records how many of its runs overlap
    let now = 0
    let most = 0
    const counting: Agent = { name: 'count', capabilities: [{ name: 'count' }], concurrency: 8, run: async ctx => { most = Math.max(most, ++now); await new Promise(resolve => setTimeout(resolve, 100)); now--; return ctx.input } }
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...FAST_TASKS, leaseMs: 3_000, agents: [counting], claimLagLimitMs: 200, lagSampleMs: 250 } })
    await net.ready()
    const node = net.nodes[0]!
    const blocker = setInterval(() => { const until = Date.now() + 400; while (Date.now() < until); }, 50)
    try {
      await waitFor(() => eventLoopLag.currentMs() > 300, { what: 'the lag to show' })
      // before, no node claimed while lagging: a mesh whose every node lagged ran nothing (100 nodes in one process)
      const ids = await Promise.all([0, 1, 2].map(async i => (await node.tasks!.service.submit({ capability: 'count', input: i })).id))
      for (const [i, id] of ids.entries()) expect((await node.tasks!.service.waitFor(id, 30_000)).result?.value).toBe(i)
      expect(eventLoopLag.currentMs()).toBeGreaterThan(200)
      expect(most).toBe(1)
    } finally {
      clearInterval(blocker)
    }
  })
})

/** Holds the replica's writes of the tasks `holds` picks on a slow disk until `open()`; `waited()` counts the writes held. */
function slowDisk (node: AgentNode, holds: (id: string) => boolean): { open: () => void, waited: () => number } {
  const store = (node.tasks!.replica as unknown as { store: { write: (id: string, change: unknown) => Promise<void> } }).store
  const write = store.write.bind(store)
  let open!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  let waited = 0
  store.write = async (id, change) => {
    if (holds(id)) {
      waited++
      await opened
    }
    return write(id, change)
  }
  return { open, waited: () => waited }
}
