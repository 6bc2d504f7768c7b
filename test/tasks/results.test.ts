import { describe, expect, it } from 'vitest'
import { resultHash } from '../../protocols/task/index.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'
import type { Agent } from '../../node/runtime/agent.js'

/** Returns `{ n: 1, from }` and changes that very object a moment later, as careless agent code may. */
const fickleAgent: Agent = {
  name: 'fickle',
  capabilities: [{ name: 'fickle', description: 'changes its result after returning it' }],
  run: async ctx => {
    const out = { n: 1, from: ctx.input }
    setImmediate(() => { out.n = 2 })
    setTimeout(() => { out.n = 3 }, 20)
    return out
  }
}

/** Returns a Date inside its result: not JSON, so no member could ever accept it. */
const datedAgent: Agent = {
  name: 'dated',
  capabilities: [{ name: 'dated', description: 'returns a Date' }],
  run: async () => ({ at: new Date(0) })
}

describe('results', () => {
  const { mesh } = useMeshFixture()

  it('every node reads the result an agent returned, though the agent changes it afterwards', async () => {
    // only node 3 runs the agent, so a task placed on the other three runs outside its placement,
    // and the runner's own copy takes the result from the run, not from a member's vote
    const net = await mesh(4, { perNode: i => ({ tasks: { ...FAST_TASKS, agents: i === 3 ? [fickleAgent] : [] } }) })
    const runner = net.nodes[3]!.peerId.toString()
    let outside = 0
    // a task is outside when node 3 is the farthest of the four from its id in XOR space: a chance of
    // 1/2 to 1/8, by how the four random ids split (not 1/4 each: at 1/8, 40 tasks fall short 3 runs
    // in 100). The loop ends at the second; 200 tasks give two with a chance of 1 - 1e-10 at 1/8
    for (let i = 0; i < 200 && outside < 2; i++) {
      const { id } = await net.nodes[3]!.tasks!.service.submit({ capability: 'fickle', input: i })
      const done = await net.nodes[3]!.tasks!.service.waitFor(id, 30_000)
      expect(done.record.final?.state).toBe('completed')
      const returned = { n: 1, from: i }
      expect(done.record.final?.cert.value.resultHash).toBe(resultHash(returned))
      if (!done.record.placement.members.includes(runner)) outside++
      // past the agent's last change
      await new Promise(resolve => setTimeout(resolve, 40))
      for (const node of net.nodes) {
        expect((await node.tasks!.service.get(id)).result?.value).toEqual(returned)
        const copy = await node.tasks!.replica.get(id)
        if (copy.result !== undefined) expect(copy.result.value).toEqual(returned)
      }
    }
    expect(outside).toBe(2)
  })

  it('an agent that returns nothing completes its task with null', async () => {
    const voidAgent: Agent<null> = { name: 'void', capabilities: [{ name: 'void' }], run: async () => undefined }
    const net = await mesh(3, { tasks: { ...FAST_TASKS, agents: [voidAgent] } })
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'void', input: null })
    const done = await s.waitFor(id, 30_000)
    expect(done.record.final?.state).toBe('completed')
    expect(done.result?.value).toBeNull()
  })

  it('a result that is not JSON fails its task at once, saying why, with no retry', async () => {
    // a lease of 2 s: beside a loaded CI run the tests' 500 ms lease lapsed once before the run's
    // report, and the lapsed attempt read as a second one
    const net = await mesh(3, { tasks: { ...FAST_TASKS, leaseMs: 2_000, agents: [datedAgent] } })
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'dated', input: null, maxAttempts: 3 })
    const done = await s.waitFor(id, 30_000)
    expect(done.record.final?.state).toBe('dead')
    expect(done.record.final?.reason).toMatch(/the result is not a JSON value/)
    // one attempt ran; on a busy machine a second claimant's claim may fall short of a majority
    // and be given back unrun (released), which is no retry
    expect(done.record.attempts.filter(a => a.outcome !== 'released')).toHaveLength(1)
  })
})
