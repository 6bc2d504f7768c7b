import { describe, expect, it } from 'vitest'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'
import type { Agent } from '../../node/runtime/agent.js'

// presence every second: the views these tests read must hold steady on a busy machine
const TASKS = { ...FAST_TASKS, presenceIntervalMs: 1_000, leaseMs: 1_000 }

describe('a subtask when its parent changes holder', () => {
  const f = useMeshFixture()

  it('a holder that takes the parent over waits for the subtask the first one submitted, and submits none of its own', async () => {
    /** the subtask tasks that ran, by id, across every node */
    const childIds = new Set<string>()
    let open!: () => void
    const opened = new Promise<void>(resolve => { open = resolve })
    const child: Agent = {
      name: 'held-child',
      capabilities: ['held.child'],
      run: async ctx => {
        childIds.add(ctx.task.id)
        const aborted = new Promise<never>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }))
        await Promise.race([opened, aborted])
        return { ranAs: ctx.task.id }
      }
    }
    const parent: Agent = { name: 'parent', capabilities: ['parent.one'], run: async ctx => ({ child: await ctx.submit('held.child', { n: 1 }) }) }
    const net = await f.mesh(3, { tasks: { ...TASKS, agents: [parent, child] } })
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'parent.one', input: null })
    await waitFor(() => childIds.size === 1, { what: 'the subtask to run', timeoutMs: 20_000 })
    const first = net.nodes.find(n => n.tasks!.executor.running().includes(id))!
    // a stop gives the parent back unfinished, as a holder's death lets its lease lapse
    await first.stop()
    const others = net.nodes.filter(n => n !== first)
    // the next holder either finds the first subtask in the parent's journal or submits another
    await waitFor(() => childIds.size > 1 || others.some(n => n.tasks!.executor.stats.stepsReplayed > 0), { what: 'the parent to run again and reach its subtask', timeoutMs: 30_000 })
    open()
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
  })
})
