import { afterEach, describe, expect, it } from 'vitest'
import { randomUUID } from 'node:crypto'
import { stateOf } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { LeaseRequest } from '../../protocols/lease/index.js'
import type { Testnet } from '../../sim/testnet.js'

describe('reply lost after the member did it', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })
  const meshLosingReply = async (agent: Agent, op: LeaseRequest['op']) => {
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 3_000, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const [holder, ...others] = net.nodes as [Testnet['nodes'][number], ...Testnet['nodes']]
    const lost = new Map<string, unknown>()
    for (const member of others) {
      const peer = member.peerId.toString()
      const replica = member.tasks!.replica
      const handle = replica.handleLease.bind(replica)
      replica.handleLease = async (from, req) => {
        const res = await handle(from, req)
        if (req.op !== op || lost.has(peer)) return res
        lost.set(peer, res.status)
        return { status: 'ERROR', reason: 'reply lost (test)' }
      }
    }
    return { holder, lost }
  }
  for (const op of ['vote', 'journal', 'wait'] as const) {
    it(op, async () => {
      let runs = 0
      const agent: Agent = op === 'vote'
        ? { name: 'a', capabilities: ['a'], concurrency: 1, run: async () => { runs++; return { run: randomUUID() } } }
        : op === 'journal'
          ? { name: 'a', capabilities: ['a'], concurrency: 1, run: async ctx => { runs++; return { made: await ctx.step('make', async () => randomUUID()) } } }
          : { name: 'a', capabilities: ['a'], concurrency: 1, run: async ctx => { runs++; return { got: await ctx.waitFor('go', { timeoutMs: 60_000 }) } } }
      const { holder, lost } = await meshLosingReply(agent, op)
      const s = holder.tasks!.service
      const { id } = await s.submit({ capability: 'a', input: {}, maxAttempts: 1 })
      if (op === 'wait') {
        await waitFor(async () => (await Promise.all(net!.nodes.map(async n => (await n.tasks!.replica.get(id)).record))).every(r => r !== undefined && stateOf(r) === 'waiting'), { what: 'wait', timeoutMs: 15_000 })
        await s.signal(id, 'go', { n: 1 })
      }
      const view = await s.waitFor(id, 15_000)
      console.log(op, [...lost.values()], holder.tasks!.leases.stats.askedAgain, view.record.attempts.map(a => a.outcome))
      expect(view.record.final?.state).toBe('completed')
    })
  }
})
