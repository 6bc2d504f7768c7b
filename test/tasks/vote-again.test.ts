import { afterEach, describe, expect, it } from 'vitest'
import { randomUUID } from 'node:crypto'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { interceptLease } from '../helpers/intercept-lease.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'

describe('a vote round whose answers are lost', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('asks the silent members again while the lease lasts: a task with one attempt completes, with the result its one run gave, on every store', async () => {
    let runs = 0
    // not pure, so its result is voted on after the run; a value that differs per run shows which run won
    const once: Agent = { name: 'once', capabilities: ['once'], concurrency: 1, run: async () => { runs++; return { run: randomUUID() } } }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 3_000, agents: i === 0 ? [once] : [] } }) })
    await net.ready()
    const [holder, ...others] = net.nodes as [typeof net.nodes[0], ...typeof net.nodes]
    // each other member loses the holder's first vote request, as a link down for a moment does
    const lost = new Map<string, number>()
    for (const member of others) {
      interceptLease(member, async req => {
        if (req.op !== 'vote' || lost.has(member.peerId.toString())) return undefined
        lost.set(member.peerId.toString(), 1)
        return { status: 'ERROR', reason: 'lost (test)' }
      })
    }
    const { id } = await holder.tasks!.service.submit({ capability: 'once', input: {}, maxAttempts: 1 })
    const view = await holder.tasks!.service.waitFor(id, 15_000)
    expect(lost.size).toBe(2)
    expect(view.record.final?.state).toBe('completed')
    expect(runs).toBe(1)
    expect(view.record.attempts).toHaveLength(1)
    expect(holder.tasks!.leases.stats.votesAskedAgain).toBeGreaterThanOrEqual(2)
    const won = view.result?.value
    expect(won).toMatchObject({ run: expect.any(String) })
    for (const n of net.nodes) {
      await waitFor(async () => (await n.tasks!.replica.get(id)).record?.final?.state === 'completed', { what: 'every member to hold the certificate', timeoutMs: 10_000 })
      expect((await n.tasks!.replica.get(id)).result?.value).toEqual(won)
    }
  })
})
