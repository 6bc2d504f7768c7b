import { describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { journalBytes, maxRecordBytes } from '../../node/tasks/options.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { abortableGate } from '../helpers/gated.js'
import { interceptLease } from '../helpers/intercept-lease.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { TaskView } from '../../node/tasks/task-service.js'
import type { Testnet } from '../../sim/testnet.js'

/** subtask ids in the journal of a task as read */
const journaledSubtasks = (view: TaskView | undefined): number => Object.keys(view?.record.journal ?? {}).filter(k => k.startsWith('subtask:')).length

/** A `held.child` agent that notes each subtask it runs and holds it until the gate opens. */
function heldChild (): { childIds: Set<string>, gate: ReturnType<typeof abortableGate>, child: Agent } {
  const childIds = new Set<string>()
  const gate = abortableGate()
  const child: Agent = {
    name: 'held-child',
    capabilities: ['held.child'],
    run: async ctx => {
      childIds.add(ctx.task.id)
      await gate.wait(ctx.signal)
      return { ranAs: ctx.task.id }
    }
  }
  return { childIds, gate, child }
}

// presence every second: the views these tests read must hold steady on a busy machine
const TASKS = { ...FAST_TASKS, presenceIntervalMs: 1_000, leaseMs: 1_000 }

describe('a subtask when its parent changes holder', () => {
  const f = useMeshFixture()

  it('a holder that takes the parent over waits for the subtask the first one submitted, and submits none of its own', async () => {
    /** the subtask tasks that ran, by id, across every node */
    const { childIds, gate, child } = heldChild()
    const parent: Agent = { name: 'parent', capabilities: ['parent.one'], run: async ctx => ({ child: await ctx.submit('held.child', { n: 1 }) }) }
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [parent, child] } })
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'parent.one', input: null })
    await waitFor(() => childIds.size === 1, { what: 'the subtask to run', timeoutMs: 20_000 })
    await waitFor(async () => journaledSubtasks(await net.nodes[0]!.tasks!.service.find(id)) === 1, { what: 'the subtask\'s id in the parent\'s journal', timeoutMs: 20_000 })
    const first = net.nodes.find(n => n.tasks!.executor.running().includes(id))!
    // a stop gives the parent back unfinished, as a holder's death lets its lease lapse
    await first.stop()
    const others = net.nodes.filter(n => n !== first)
    // the next holder either finds the first subtask in the parent's journal or submits another
    await waitFor(() => childIds.size > 1 || others.some(n => n.tasks!.executor.stats.subtasksReused > 0), { what: 'the parent to run again and reach its subtask', timeoutMs: 30_000 })
    gate.open()
    const done = await others[0]!.tasks!.service.waitFor(id, 30_000)
    expect(done.record.final?.state).toBe('completed')
    const [only] = [...childIds]
    expect({ subtasks: childIds.size, result: done.result?.value }).toEqual({ subtasks: 1, result: { child: { ranAs: only } } })
  })

  it('a retry of the parent after its subtask failed submits the subtask again, where waiting on the failed one would fail every attempt', async () => {
    const childIds: string[] = []
    const child: Agent = {
      name: 'fails-first',
      capabilities: ['fails.first'],
      run: async ctx => {
        childIds.push(ctx.task.id)
        if (childIds.length === 1) throw new Error('the first subtask fails')
        return { ranAs: ctx.task.id }
      }
    }
    const parent: Agent = { name: 'parent', capabilities: ['parent.two'], run: async ctx => ({ child: await ctx.submit('fails.first', { n: 1 }, { maxAttempts: 1 }) }) }
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [parent, child] } })
    const s = net.nodes[0]!.tasks!.service
    const done = await s.waitFor((await s.submit({ capability: 'parent.two', input: null, maxAttempts: 3 })).id, 30_000)
    expect({ state: done.record.final?.state, subtasks: childIds.length, distinct: new Set(childIds).size }).toEqual({ state: 'completed', subtasks: 2, distinct: 2 })
    expect(done.result?.value).toEqual({ child: { ranAs: childIds[1] } })
    expect(done.record.attempts.filter(a => a.outcome === 'failed')).toHaveLength(1)
    // the retry's id under a key of its own, beside the failed one's: no merge of copies can bring the failed id back
    const ids = Object.entries(done.record.journal ?? {}).filter(([k]) => k.startsWith('subtask:')).sort(([a], [b]) => a.length - b.length)
    expect(ids.map(([k, v]) => [k.replace(/^subtask:[0-9a-f]{16}:/, ''), v])).toEqual([['0', childIds[0]], ['0~1', childIds[1]]])
  })

  it('tells the same submit in two steps apart: a later attempt that replays the first step waits for the second step\'s subtask, not the first\'s', async () => {
    const childIds: string[] = []
    const gate = abortableGate()
    const child: Agent = {
      name: 'twin-child',
      capabilities: ['twin.child'],
      run: async ctx => {
        if (!childIds.includes(ctx.task.id)) childIds.push(ctx.task.id)
        // the first step's subtask completes at once; the second's is held until the takeover
        if (childIds[0] !== ctx.task.id) {
          await gate.wait(ctx.signal)
        }
        return { ranAs: ctx.task.id }
      }
    }
    const parent: Agent = {
      name: 'parent',
      capabilities: ['parent.three'],
      run: async ctx => ({
        a: await ctx.step('a', async () => ctx.submit('twin.child', 'same')),
        b: await ctx.step('b', async () => ctx.submit('twin.child', 'same'))
      })
    }
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [parent, child] } })
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'parent.three', input: null })
    await waitFor(async () => childIds.length === 2 && journaledSubtasks(await s.find(id)) === 2, { what: 'the second step\'s subtask to run, its id journaled', timeoutMs: 20_000 })
    const first = net.nodes.find(n => n.tasks!.executor.running().includes(id))!
    await first.stop()
    const others = net.nodes.filter(n => n !== first)
    await waitFor(() => childIds.length > 2 || others.some(n => n.tasks!.executor.stats.subtasksReused > 0), { what: 'the parent to run again and reach its second subtask', timeoutMs: 30_000 })
    gate.open()
    const done = await others[0]!.tasks!.service.waitFor(id, 30_000)
    expect({ state: done.record.final?.state, subtasks: childIds.length, result: done.result?.value }).toEqual({ state: 'completed', subtasks: 2, result: { a: { ranAs: childIds[0] }, b: { ranAs: childIds[1] } } })
  })

  it('keeps the ids of a wide fan-out only while they fit in half the room the input leaves: the run goes on, and its later steps still fit', async () => {
    const fanOut: Agent = {
      name: 'fan-out',
      capabilities: ['fan.out'],
      run: async ctx => {
        const echoed = await Promise.all(Array.from({ length: 250 }, async (_, i) => ctx.submit('echo', { i })))
        return { echoed: echoed.length, after: await ctx.step('after', async () => 'x'.repeat(4_000)) }
      }
    }
    // the same fan-out inside a step that returns 30 KB: the step is refused, its ids counted with it
    const fanOutStep: Agent = {
      name: 'fan-out-step',
      capabilities: ['fan.out.step'],
      run: async ctx => ctx.step('fan', async () => {
        await Promise.all(Array.from({ length: 120 }, async (_, i) => ctx.submit('echo', { i })))
        return 'x'.repeat(30_000)
      })
    }
    const small = { ...TASKS, maxInputBytes: 1_024, agents: [fanOut, fanOutStep, echoAgent] }
    const net = await f.mesh(3, { tasks: small })
    const s = net.nodes[0]!.tasks!.service
    const served = (): number => net.nodes.reduce((n, node) => n + (node.tasks!.handlerStats.served?.['lease.journal'] ?? 0), 0)
    const done = await s.waitFor((await s.submit({ capability: 'fan.out', input: null })).id, 60_000)
    expect({ state: done.record.final?.state, reason: done.record.final?.reason, echoed: (done.result?.value as { echoed?: number })?.echoed }).toEqual({ state: 'completed', reason: undefined, echoed: 250 })
    const kept = journaledSubtasks(done)
    const unkept = net.nodes.reduce((n, node) => n + node.tasks!.executor.stats.subtaskIdsUnkept, 0)
    // an id's entry is about 100 bytes (its key and the id, without the lease's terms): some 160 fit in half of 33 KiB
    expect(kept).toBeGreaterThan(100)
    expect(kept).toBeLessThan(250)
    // counted on every attempt: on a loaded machine a 1 s lease may lapse under the fan-out, and a second attempt runs
    expect(unkept).toBeGreaterThanOrEqual(250 - kept)
    expect(journalBytes(done.record)).toBeLessThanOrEqual(maxRecordBytes(small))
    // the ids go in a few writes, those asked for while one is on its way together: each rewrites
    // the whole record on every member. One each was about 2 x kept requests served
    expect(served()).toBeLessThan(kept / 2)
    const stepped = await s.waitFor((await s.submit({ capability: 'fan.out.step', input: null, maxAttempts: 1 })).id, 60_000)
    expect({ state: stepped.record.final?.state, reason: stepped.record.final?.reason }).toMatchObject({ state: 'dead', reason: expect.stringMatching(/ctx\.step "fan": its value would grow the task's input and journal to \d+ bytes, past the 33792/) })
    expect(journalBytes(stepped.record)).toBeLessThanOrEqual(maxRecordBytes(small))
  })

  it('journals a fan-out\'s ids before its subtasks are stored: a holder that dies with all of them submitted leaves none for the next to submit again', async () => {
    const childIds = new Set<string>()
    /** subtasks that found their id in their parent's journal, as a majority of its placement holds it, when they began */
    const journaledFirst = new Set<string>()
    const gate = abortableGate()
    let net: Testnet | undefined
    const child: Agent = {
      name: 'fan-child',
      capabilities: ['fan.child'],
      concurrency: 64,
      run: async ctx => {
        childIds.add(ctx.task.id)
        // read through any node that answers: the one stopped may be the first
        let parentView: TaskView | undefined
        for (const node of net!.nodes) {
          parentView = await node.tasks!.service.find(ctx.task.parent!).catch(() => undefined)
          if (parentView !== undefined) break
        }
        if (Object.values(parentView?.record.journal ?? {}).includes(ctx.task.id)) journaledFirst.add(ctx.task.id)
        await gate.wait(ctx.signal)
        return ctx.input
      }
    }
    const parent: Agent = { name: 'parent', capabilities: ['parent.fan'], run: async ctx => Promise.all(Array.from({ length: 40 }, async (_, i) => ctx.submit('fan.child', i))) }
    net = await f.mesh(3, { tasks: { ...TASKS, agents: [parent, child] } })
    // journal writes answered late: a subtask stored before its id was journaled would run first
    for (const node of net.nodes) interceptLease(node, async req => { if (req.op === 'journal') await new Promise(resolve => setTimeout(resolve, 200)); return undefined })
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'parent.fan', input: null })
    // stopped as soon as some run: the others may be anywhere between their submit and their run
    await waitFor(() => childIds.size >= 5, { what: 'the first subtasks to run', timeoutMs: 20_000 })
    const first = net.nodes.find(n => n.tasks!.executor.running().includes(id))!
    await first.stop()
    const others = net.nodes.filter(n => n !== first)
    await waitFor(() => others.some(n => n.tasks!.executor.running().includes(id)), { what: 'the parent to run again', timeoutMs: 30_000 })
    gate.open()
    const done = await others[0]!.tasks!.service.waitFor(id, 60_000)
    expect(done.record.final?.state).toBe('completed')
    expect(done.result?.value).toEqual(Array.from({ length: 40 }, (_, i) => i))
    const listed = new Set((await Promise.all(others.map(async n => n.tasks!.service.list({ parent: id, limit: 1_000 })))).flat().map(r => r.task.id))
    expect({ ran: childIds.size, listed: listed.size, journaledFirst: journaledFirst.size }).toEqual({ ran: 40, listed: 40, journaledFirst: 40 })
  })

  it('a submit tells `made` the new task\'s id before any member stores it, and a throw there fails the submit with nothing stored', async () => {
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [echoAgent] } })
    const s = net.nodes[0]!.tasks!.service
    const holders = async (id: string): Promise<number> => (await Promise.all(net.nodes.map(async n => n.tasks!.replica.get(id)))).filter(c => c.record !== undefined).length
    let heldWhenMade: number | undefined
    const { id } = await s.submit({ capability: 'echo', input: 'told', made: async id => { heldWhenMade = await holders(id) } })
    expect(heldWhenMade).toBe(0)
    expect((await s.waitFor(id, 20_000)).record.final?.state).toBe('completed')
    let refused: string | undefined
    await expect(s.submit({ capability: 'echo', input: 'refused', made: async id => { refused = id; throw new Error('not kept') } })).rejects.toThrow('not kept')
    expect(refused).toMatch(/^[0-9a-f]{64}$/)
    expect(await holders(refused!)).toBe(0)
  })

  it('a run canceled while its subtasks\' ids are on their way to the journal stores none of those subtasks', async () => {
    const parent: Agent = { name: 'parent', capabilities: ['parent.canceled'], run: async ctx => Promise.all(Array.from({ length: 20 }, async (_, i) => ctx.submit('echo', i))) }
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [parent, echoAgent] } })
    let firstWrite!: () => void
    const writing = new Promise<void>(resolve => { firstWrite = resolve })
    // journal writes answered late, so the cancel comes while they are on their way
    for (const node of net.nodes) {
      interceptLease(node, async req => {
        if (req.op !== 'journal') return undefined
        firstWrite()
        await new Promise(resolve => setTimeout(resolve, 300))
        return undefined
      })
    }
    // every subtask submit the run makes, on whichever node runs it, counted once it settles
    let settled = 0
    for (const node of net.nodes) {
      const service = node.tasks!.service
      const submit = service.submit.bind(service)
      service.submit = async req => { try { return await submit(req) } finally { if (req.parent !== undefined) settled++ } }
    }
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'parent.canceled', input: null })
    await writing
    await s.cancel(id)
    await waitFor(() => settled === 20, { what: 'every subtask submit to settle', timeoutMs: 20_000 })
    const listed = (await Promise.all(net.nodes.map(async n => n.tasks!.service.list({ parent: id, limit: 1_000 })))).flat()
    expect(listed).toEqual([])
  })

  it('a takeover whose read of the parent\'s journal fails submits nothing: its submit fails, and a later attempt waits for the subtask the first journaled', async () => {
    const { childIds, gate, child } = heldChild()
    const parent: Agent = { name: 'parent', capabilities: ['parent.read'], run: async ctx => ({ child: await ctx.submit('held.child', { n: 1 }) }) }
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [parent, child] } })
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'parent.read', input: null, maxAttempts: 5 })
    await waitFor(() => childIds.size === 1, { what: 'the subtask to run', timeoutMs: 20_000 })
    await waitFor(async () => journaledSubtasks(await net.nodes[0]!.tasks!.service.find(id)) === 1, { what: 'the subtask\'s id in the parent\'s journal', timeoutMs: 20_000 })
    const first = net.nodes.find(n => n.tasks!.executor.running().includes(id))!
    const others = net.nodes.filter(n => n !== first)
    // the next holder's first read of the parent fails, as when a majority does not answer in time
    let failedReads = 0
    for (const n of others) {
      const service = n.tasks!.service
      const find = service.find.bind(service)
      service.find = async (taskId, options) => {
        if (taskId === id && failedReads === 0 && n.tasks!.executor.running().includes(id)) {
          failedReads++
          throw Object.assign(new Error('no majority answered'), { name: 'QuorumUnavailableError' })
        }
        return await find(taskId, options)
      }
    }
    await first.stop()
    await waitFor(() => failedReads === 1, { what: 'the takeover\'s read to fail', timeoutMs: 30_000 })
    await waitFor(() => others.some(n => n.tasks!.executor.stats.subtasksReused > 0) || childIds.size > 1, { what: 'a later attempt to reach its subtask', timeoutMs: 30_000 })
    gate.open()
    const done = await others[0]!.tasks!.service.waitFor(id, 30_000)
    expect(done.record.final?.state).toBe('completed')
    const [only] = [...childIds]
    expect({ subtasks: childIds.size, result: done.result?.value }).toEqual({ subtasks: 1, result: { child: { ranAs: only } } })
  })

  it('a reused subtask whose result no replica gives within subtaskResultWaitMs is submitted again, under a key of its own', async () => {
    const childIds: string[] = []
    const child: Agent = { name: 'plain-child', capabilities: ['plain.child'], run: async ctx => { childIds.push(ctx.task.id); return { ranAs: ctx.task.id } } }
    const parent: Agent = {
      name: 'parent',
      capabilities: ['parent.lost'],
      run: async ctx => {
        const got = await ctx.submit('plain.child', { n: 1 })
        // the first attempt fails after its subtask completed: the retry finds that subtask journaled
        if (ctx.attempt === 1) throw new Error('the first attempt fails')
        return { child: got }
      }
    }
    const net = await f.mesh(3, { tasks: { ...TASKS, subtaskResultWaitMs: 300, agents: [parent, child] } })
    // from the retry on, every node's wait for the first subtask finds it completed with no result
    for (const n of net.nodes) {
      const service = n.tasks!.service
      const waitFor = service.waitFor.bind(service)
      service.waitFor = async (taskId, ms, signal) => {
        const view = await waitFor(taskId, ms, signal)
        return taskId === childIds[0] && reused() ? { record: view.record } : view
      }
    }
    const reused = (): boolean => net.nodes.some(n => n.tasks!.executor.stats.subtasksReused > 0)
    const s = net.nodes[0]!.tasks!.service
    const done = await s.waitFor((await s.submit({ capability: 'parent.lost', input: null, maxAttempts: 3 })).id, 30_000)
    expect({ state: done.record.final?.state, subtasks: childIds.length, reused: reused() }).toEqual({ state: 'completed', subtasks: 2, reused: true })
    expect(done.result?.value).toEqual({ child: { ranAs: childIds[1] } })
    const ids = Object.entries(done.record.journal ?? {}).filter(([k]) => k.startsWith('subtask:')).sort(([a], [b]) => a.length - b.length)
    expect(ids.map(([k, v]) => [k.replace(/^subtask:[0-9a-f]{16}:/, ''), v])).toEqual([['0', childIds[0]], ['0~1', childIds[1]]])
  })
})
