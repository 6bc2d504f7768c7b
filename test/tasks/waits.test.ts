import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { echoAgent } from '../../node/agents/basic.js'
import { llmAgents } from '../../node/llm/agents.js'
import { recordEvents } from '../../node/api/task-feed.js'
import { stateOf } from '../../protocols/task/index.js'
import { waitFor } from '../../sim/wait.js'
import { call } from '../helpers/api.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'

/** side effects of the first half, counted across every node of the (in-process) testnet */
let firstHalves = 0

const twoHalves: Agent = {
  name: 'two-halves',
  capabilities: ['two.halves'],
  concurrency: 2,
  run: async ctx => {
    await ctx.step('first half', async () => { firstHalves++; return true })
    const { n } = await ctx.waitFor('go', { timeoutMs: 60_000, schema: z.object({ n: z.number() }) })
    return { n: n * 2 }
  }
}

const waitsBriefly: Agent = {
  name: 'waits-briefly',
  capabilities: ['waits.briefly'],
  run: async ctx => ctx.waitFor('never', { timeoutMs: 300 })
}

// presence every second: the views these tests read must hold steady on a busy machine
const TASKS = { ...FAST_TASKS, presenceIntervalMs: 1_000, leaseMs: 1_000 }

describe('durable waits', () => {
  const f = useMeshFixture()

  const waiting = async (n: Testnet, id: string): Promise<void> => {
    await waitFor(async () => stateOf((await n.nodes[0]!.tasks!.service.get(id)).record) === 'waiting', { what: `task ${id} to wait`, timeoutMs: 20_000 })
  }

  it('a wait gives its lease and slot back, survives the death of the peer that ran the first half, and resumes elsewhere from the journal', async () => {
    firstHalves = 0
    const net = await f.mesh(4, { tasks: { ...TASKS, agents: [twoHalves] } })
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'two.halves', input: null })
    await waiting(net, id)
    const record = (await net.nodes[0]!.tasks!.service.get(id)).record
    const first = record.attempts.find(a => a.outcome === 'suspended')!.peer
    expect(record.waiting?.name).toBe('go')
    // the task's event stream tells the wait, and which signal it waits for
    const told = recordEvents(await net.nodes[0]!.tasks!.service.get(id))
    expect(told.at(-1)).toMatchObject({ event: 'attempt-suspended', data: { peer: first, signal: 'go' } })
    // no lease and no slot held while it waits (the runner lets go once a majority recorded the
    // wait, which a loaded machine can show before the runner's own turn comes)
    const runner = net.nodes.find(n => n.peerId.toString() === first)!
    await waitFor(() => !runner.tasks!.executor.running().includes(id), { what: 'the runner to let go of the waiting task', timeoutMs: 10_000 })
    await runner.stop()
    const others = net.nodes.filter(n => n !== runner)
    const s = others[0]!.tasks!.service
    await expect(s.signal(id, 'go', { n: 'five' })).rejects.toMatchObject({ name: 'InvalidSignalError' })
    await expect(s.signal(id, 'stop', { n: 5 })).rejects.toMatchObject({ name: 'TaskNotWaitingError' })
    // a field the wait's schema does not name is taken, as its zod object takes (and strips) it
    const given = { n: 5, note: 'extra' }
    await s.signal(id, 'go', given)
    // the same signal again (a retry after a lost answer) is answered as the first; other data is refused
    await expect(others[1]!.tasks!.service.signal(id, 'go', given)).resolves.toBeDefined()
    await expect(s.signal(id, 'go', { n: 6 })).rejects.toMatchObject({ name: 'TaskNotWaitingError', message: expect.stringMatching(/already given, with other data/) })
    const done = await s.waitFor(id, 20_000)
    expect(done.record.final?.state).toBe('completed')
    expect(done.result?.value).toEqual({ n: 10 })
    expect(done.record.final?.peer).not.toBe(first)
    expect(firstHalves).toBe(1)
    // the whole history, as the stream reads it from the placement: this copy may hold the outcome before the attempt
    await waitFor(async () => {
      const events = recordEvents((await s.find(id, { complete: true }))!)
      const suspended = events.findIndex(e => e.event === 'attempt-suspended')
      return suspended > 0 && events.at(-1)?.event === 'completed' && events.slice(suspended).some(e => e.event === 'claimed' && e.data.peer !== first)
    }, { what: "the task's events telling the wait and the resumed run", timeoutMs: 20_000 })
    // the resumed run is numbered as its grant numbers it (ctx.attempt, its progress): a wait is not a failure
    const claimed = recordEvents((await s.find(id, { complete: true }))!).filter(e => e.event === 'claimed')
    expect(claimed.map(e => e.data.attempt)).toEqual(claimed.map(() => 1))
  }, 60_000)

  it('a signal kept by one member of three is refused with 503, and so is its retry; another that a majority keeps is the one every copy ends with', async () => {
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [twoHalves] } })
    const [a, ...others] = net.nodes as [Testnet['nodes'][number], ...Testnet['nodes']]
    const { id } = await a.tasks!.service.submit({ capability: 'two.halves', input: null })
    await waiting(net, id)
    // the runner lets go of the waiting task before the others stop (a stopped runner's lease would lapse)
    await waitFor(() => net.nodes.every(n => !n.tasks!.executor.running().includes(id)), { what: 'the runner to let go of the waiting task', timeoutMs: 10_000 })
    for (const n of others) await n.stop()
    // a's own copy keeps it: the refusal counts it (it said 0 of 3, as the stopped members answered first)
    await expect(a.tasks!.service.signal(id, 'go', { n: 1 })).rejects.toMatchObject({ name: 'QuorumUnavailableError', message: expect.stringMatching(/^signal kept by 1 of 3 members/) })
    // a keeps it (in its first round), and so its retry is answered OK by a: before, the retry was
    // answered from a's copy alone, "delivered" by one member of three
    await expect(a.tasks!.service.signal(id, 'go', { n: 1 })).rejects.toMatchObject({ name: 'QuorumUnavailableError' })
    // the other two come back while a is away, and another signal reaches them: a majority, so it counts
    await a.stop()
    const [b, c] = [await net.restartNode(1), await net.restartNode(2)]
    await net.waitForFullMesh()
    await b.tasks!.service.signal(id, 'go', { n: 2 })
    expect((await c.tasks!.service.waitFor(id, 60_000)).result?.value).toEqual({ n: 4 })
    // a comes back holding its {n: 1}: every copy settles on the signal the run used, and a retry of
    // the refused one is refused again. Before, a's copy had {n: 1} in its journal, the smaller value
    // won the merge everywhere, and a rerun would have read it
    const again = await net.restartNode(0)
    await net.waitForFullMesh()
    await waitFor(async () => {
      const kept = await Promise.all([again, b, c].map(async n => (await n.tasks!.replica.get(id)).record?.journal?.['signal:go']))
      return kept.every(k => JSON.stringify(k) === JSON.stringify(kept[0]) && (k as { data?: unknown } | undefined)?.data !== undefined)
    }, { what: 'every copy to hold one signal', timeoutMs: 30_000 })
    expect((await again.tasks!.replica.get(id)).record?.journal?.['signal:go']).toMatchObject({ data: { n: 2 } })
    await expect(again.tasks!.service.signal(id, 'go', { n: 1 })).rejects.toMatchObject({ name: 'TaskNotWaitingError' })
    await expect(again.tasks!.service.signal(id, 'go', { n: 2 })).resolves.toBeDefined()
  }, 120_000)

  it('a signal for a task that is not waiting is a 409, a bad one a 400; a wait that times out fails the attempt clearly', async () => {
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [echoAgent, waitsBriefly] } })
    const base = await f.api(net.nodes[1]!)
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'echo', input: 1 })
    await s.waitFor(id, 20_000)
    const refused = await call(base, 'POST', `/v1/tasks/${id}/signal`, { name: 'go', data: 1 })
    expect(refused.status).toBe(409)
    expect(refused.json.error.name).toBe('NOT_WAITING')
    expect((await call(base, 'POST', `/v1/tasks/${id}/signal`, { data: 1 })).status).toBe(400)

    const timed = await s.submit({ capability: 'waits.briefly', input: null, maxAttempts: 1 })
    const dead = await s.waitFor(timed.id, 30_000)
    expect(dead.record.final?.state).toBe('dead')
    expect(dead.record.final?.reason).toMatch(/no signal "never" within 300 ms/)
  }, 60_000)

  it('a run that was aborted (its lease lost, or, as here, its task canceled) runs no further step: its function is not called', async () => {
    let gate!: () => void
    const opened = new Promise<void>(resolve => { gate = resolve })
    let aborted: AbortSignal | undefined
    let secondRan = 0
    let ended: string | undefined
    let submitted: string | undefined
    const stepper: Agent = {
      name: 'stepper',
      capabilities: ['stepper'],
      run: async ctx => {
        aborted = ctx.signal
        await ctx.step('first', async () => 1)
        await opened
        // nor does it start more work on the mesh
        submitted = await ctx.submit('echo', 'after the abort').then(() => 'went on', (err: any) => err?.name)
        try {
          await ctx.step('second', async () => { secondRan++; return 2 })
          ended = 'went on'
        } catch (err: any) {
          ended = err?.name ?? 'threw'
          throw err
        }
        return 'done'
      }
    }
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [stepper, echoAgent] } })
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'stepper', input: null })
    await waitFor(() => aborted !== undefined, { what: 'the run to start' })
    // a cancel aborts the run, as a lost lease does (and then takes the lease away at the next renewal)
    await s.cancel(id)
    await waitFor(() => aborted?.aborted === true, { what: 'the run to be aborted' })
    gate()
    await waitFor(() => ended !== undefined, { what: 'the step after the loss to end' })
    // thrown with the reason the run was aborted for
    expect({ ended, secondRan, submitted }).toEqual({ ended: 'TaskCanceledError', secondRan: 0, submitted: 'TaskCanceledError' })
    for (const node of net.nodes) expect(await node.tasks!.service.list({ capability: 'echo' })).toEqual([])
  })

  it('refuses a journal step or a signal that would grow a record past what a peer reads, at once and saying why', async () => {
    // a 16 KiB input and result: a frame of 96 KiB, an input and journal of at most 48 KiB
    const small = { ...TASKS, maxInputBytes: 16_384, maxResultBytes: 16_384 }
    const bigStep: Agent = { name: 'big-step', capabilities: ['big.step'], run: async ctx => ctx.step('big', async () => 'x'.repeat(100_000)) }
    const bigIntStep: Agent = { name: 'bigint-step', capabilities: ['bigint.step'], run: async ctx => ctx.step('n', async () => 10n as unknown as number) }
    const nulStep: Agent = { name: 'nul-step', capabilities: ['nul.step'], run: async ctx => ctx.step('\u0000terms', async () => 1) }
    const protoStep: Agent = { name: 'proto-step', capabilities: ['proto.step'], run: async ctx => ctx.step('__proto__', async () => 1) }
    // where signals are kept: such a step was read as the signal "go" by the wait after it
    const signalStep: Agent = { name: 'signal-step', capabilities: ['signal.step'], run: async ctx => { await ctx.step('signal:go', async () => ({ data: 'from-step' })); return ctx.waitFor('go') } }
    // where the subtasks a run submitted are kept: a takeover would have waited on its value as a subtask's id
    const subtaskStep: Agent = { name: 'subtask-step', capabilities: ['subtask.step'], run: async ctx => ctx.step('subtask:x', async () => ({ id: 'not a task' })) }
    // a key an object inherits is no step the journal holds: it runs
    const inherited: Agent = { name: 'inherited-step', capabilities: ['inherited.step'], run: async ctx => { await ctx.step('first', async () => 1); return ctx.step('toString', async () => 'ran') } }
    const net = await f.mesh(3, { tasks: { ...small, agents: [twoHalves, bigStep, bigIntStep, nulStep, protoStep, inherited, signalStep, subtaskStep] } })
    const base = await f.api(net.nodes[1]!)
    const s = net.nodes[0]!.tasks!.service
    // it failed for want of a frame that could carry it, attempt after attempt
    const stepped = await s.waitFor((await s.submit({ capability: 'big.step', input: null })).id, 30_000)
    expect(stepped.record.final?.state).toBe('dead')
    // failed once and not retried; on a busy machine a 1 s lease may also have lapsed, or a short
    // claim been given back unrun, before the run that failed: no retry of the refusal either
    expect(stepped.record.attempts.filter(a => a.outcome === 'failed')).toHaveLength(1)
    expect(stepped.record.attempts.at(-1)?.outcome).toBe('failed')
    expect(stepped.record.final?.reason).toMatch(/ctx\.step "big": its value would grow the task's input and journal to \d+ bytes, past the 49152/)
    // a step value that is no JSON is refused as a result would be: at once, saying so (it failed each attempt with JSON.stringify's words)
    const notJson = await s.waitFor((await s.submit({ capability: 'bigint.step', input: null, maxAttempts: 3 })).id, 30_000)
    expect(notJson.record.final?.state).toBe('dead')
    expect(notJson.record.attempts.filter(a => a.outcome === 'failed')).toHaveLength(1)
    expect(notJson.record.final?.reason).toMatch(/ctx\.step "n": its value is not a JSON value/)
    // a key the members would refuse (NUL first is the journal's own): at once, saying so
    const nul = await s.waitFor((await s.submit({ capability: 'nul.step', input: null, maxAttempts: 3 })).id, 30_000)
    expect({ state: nul.record.final?.state, failed: nul.record.attempts.filter(a => a.outcome === 'failed').length }).toEqual({ state: 'dead', failed: 1 })
    expect(nul.record.final?.reason).toMatch(/ctx\.step: a key of 1-256 characters, not starting with NUL, "signal:" or "subtask:", and not "__proto__"/)
    const signalLike = await s.waitFor((await s.submit({ capability: 'signal.step', input: null, maxAttempts: 3 })).id, 30_000)
    expect({ state: signalLike.record.final?.state, reason: signalLike.record.final?.reason }).toMatchObject({ state: 'dead', reason: expect.stringMatching(/not starting with NUL, "signal:" or "subtask:"/) })
    const subtaskLike = await s.waitFor((await s.submit({ capability: 'subtask.step', input: null, maxAttempts: 3 })).id, 30_000)
    expect({ state: subtaskLike.record.final?.state, failed: subtaskLike.record.attempts.filter(a => a.outcome === 'failed').length, reason: subtaskLike.record.final?.reason }).toMatchObject({ state: 'dead', failed: 1, reason: expect.stringMatching(/not starting with NUL, "signal:" or "subtask:"/) })
    const proto = await s.waitFor((await s.submit({ capability: 'proto.step', input: null, maxAttempts: 3 })).id, 30_000)
    expect({ state: proto.record.final?.state, reason: proto.record.final?.reason }).toMatchObject({ state: 'dead', reason: expect.stringMatching(/not "__proto__"/) })
    const ran = await s.waitFor((await s.submit({ capability: 'inherited.step', input: null })).id, 30_000)
    expect({ state: ran.record.final?.state, result: ran.result?.value }).toEqual({ state: 'completed', result: 'ran' })

    const { id } = await s.submit({ capability: 'two.halves', input: null })
    await waiting(net, id)
    const big = await call(base, 'POST', `/v1/tasks/${id}/signal`, { name: 'go', data: { n: 1, pad: 'x'.repeat(100_000) } })
    expect({ status: big.status, message: big.json?.error?.message }).toMatchObject({ status: 400, message: expect.stringMatching(/signal "go": its data would grow the task's input and journal/) })
    // the task still waits, and a signal that fits goes through
    expect((await call(base, 'POST', `/v1/tasks/${id}/signal`, { name: 'go', data: { n: 4 } })).status).toBe(200)
    expect((await s.waitFor(id, 20_000)).result?.value).toEqual({ n: 8 })
  }, 60_000)

  it('a tool call that needs approval waits for it; a rejection reaches the model as a refusal, and the tool never runs', async () => {
    const fake = await f.fakeOpenAI((body, n) => n % 2 === 1 ? { toolCalls: [{ name: 'echo', arguments: { input: 'rm -rf' } }] } : { content: 'understood' })
    const llm = llmAgents({ model: 'm', baseURL: fake.baseURL, apiKey: 'k' })
    // no lease is meant to lapse here: a 1 s lease beside a loaded CI run lapsed until the run was
    // out of attempts before it ever reached its wait
    const net = await f.mesh(3, { tasks: { ...TASKS, leaseMs: 5_000, agents: [...llm, echoAgent] } })
    const base = await f.api(net.nodes[2]!)
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'agent', input: { prompt: 'clean up', tools: ['echo'], needsApproval: ['echo'] } })
    await waiting(net, id)
    const listed = await call(base, 'GET', '/v1/tasks?state=waiting')
    expect(listed.json.tasks.map((t: any) => [t.id, t.waitingFor?.name])).toContainEqual([id, 'approve:call_1_0'])
    const answer = await call(base, 'POST', `/v1/tasks/${id}/signal`, { name: 'approve:call_1_0', data: { approved: false, reason: 'not on production' } })
    expect(answer.status).toBe(200)
    const done = await s.waitFor(id, 20_000)
    expect(done.record.final?.state).toBe('completed')
    const toolMessage = fake.requests[1].messages.find((m: any) => m.role === 'tool')
    expect(toolMessage.content).toContain('refused by a person: not on production')
    // the tool never ran: no node of the three (each a member of every placement) holds an echo task.
    // Not a count of runs: on a loaded machine a lapsed lease runs the agent again, which is allowed
    for (const node of net.nodes) expect(await node.tasks!.service.list({ capability: 'echo' })).toEqual([])

    // approved, the call runs as a subtask and its result reaches the model
    const approved = await s.submit({ capability: 'agent', input: { prompt: 'echo it', tools: ['echo'], needsApproval: ['echo'] } })
    await waiting(net, approved.id)
    const name = (await s.get(approved.id)).record.waiting!.name
    expect((await call(base, 'POST', `/v1/tasks/${approved.id}/signal`, { name, data: { approved: true } })).status).toBe(200)
    expect((await call(base, 'POST', `/v1/tasks/${approved.id}/signal`, { name, data: { approved: false } })).status).toBe(409)
    expect((await s.waitFor(approved.id, 20_000)).record.final?.state).toBe('completed')
    const ran = fake.requests.at(-1).messages.find((m: any) => m.role === 'tool')
    expect(JSON.parse(ran.content)).toEqual({ ok: 'rm -rf' })
  }, 60_000)
})
