import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent, sleepAgent } from '../../node/agents/basic.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

describe('pulls back off while they find nothing', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('an idle node pulls ever less often; an offer brings pulls back to every pullIntervalMs at once', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, pullIntervalMs: 100, pullIntervalCapMs: 8_000, agents: i === 0 ? [] : [echoAgent] } }) })
    await net.ready()
    const [a, b, c] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    // after pulls waiting 100, 200, 400, 800 and 1,600 ms that found nothing, the next waits are 3.2 s and more
    await waitFor(() => b.tasks!.claimer.stats.pulls >= 6 && c.tasks!.claimer.stats.pulls >= 6, { what: 'the first pulls', timeoutMs: 20_000 })
    const idle = [b, c].map(n => n.tasks!.claimer.stats.pulls)
    // a window, not a wait for an event: the count of pulls in it is the figure (20 each without the back-off)
    await delay(2_000)
    expect(b.tasks!.claimer.stats.pulls - idle[0]!).toBeLessThanOrEqual(1)
    expect(c.tasks!.claimer.stats.pulls - idle[1]!).toBeLessThanOrEqual(1)
    // a runs nothing, and without a handoff it stores the task and offers it to a runner
    a.tasks!.service.handoff = undefined
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'moving' })
    await waitFor(() => b.tasks!.claimer.stats.offersReceived + c.tasks!.claimer.stats.offersReceived > 0, { what: 'the offer', timeoutMs: 10_000 })
    const runner = b.tasks!.claimer.stats.offersReceived > 0 ? b : c
    const since = runner.tasks!.claimer.stats.pulls
    // the next pull at once, then after 100, 200 and 400 ms: where the back-off alone would wait 3.2 s or more
    await waitFor(() => runner.tasks!.claimer.stats.pulls >= since + 3, { what: 'three pulls soon after the offer', timeoutMs: 2_500 })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
  })

  it('a node with no free slot skips its pulls and does not back off: its first pull once a slot frees is near', async () => {
    const oneSlot = { ...sleepAgent, concurrency: 1 }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, pullIntervalMs: 100, pullIntervalCapMs: 8_000, agents: i === 1 ? [oneSlot] : [] } }) })
    await net.ready()
    const [a, b] = [net.nodes[0]!, net.nodes[1]!]
    const { id } = await a.tasks!.service.submit({ capability: 'sleep', input: { ms: 5_000 } })
    await waitFor(() => b.tasks!.runtime.freeSlots().sleep === 0, { what: 'the one slot taken', timeoutMs: 10_000 })
    // the pull already due comes when it was due (the idle back-off had put it off)
    const due = b.tasks!.claimer.stats.pulls
    await waitFor(() => b.tasks!.claimer.stats.pulls > due, { what: 'a pull while busy', timeoutMs: 10_000 })
    const since = b.tasks!.claimer.stats.pulls
    // then every 100 ms while busy, where skipped pulls that backed off would wait 200, 400, 800 and 1,600 ms
    await waitFor(() => b.tasks!.claimer.stats.pulls >= since + 4, { what: 'pulls while busy', timeoutMs: 2_000 })
    await a.tasks!.service.cancel(id)
  })
})
