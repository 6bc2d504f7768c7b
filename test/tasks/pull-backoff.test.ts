import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

describe('pulls back off while they find nothing', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('an idle node pulls ever less often, down to one pull a pullIntervalCapMs; an offer brings pulls back to every pullIntervalMs', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, pullIntervalMs: 100, pullIntervalCapMs: 1_600, agents: i === 0 ? [] : [echoAgent] } }) })
    await net.ready()
    const [a, b, c] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    // pulls of 100, 200, 400 and 800 ms find nothing: every wait after them is the cap
    await waitFor(() => b.tasks!.claimer.stats.pulls >= 5 && c.tasks!.claimer.stats.pulls >= 5, { what: 'the first pulls', timeoutMs: 15_000 })
    const idle = [b, c].map(n => n.tasks!.claimer.stats.pulls)
    // a window, not a wait for an event: the count of pulls in it is the figure (20 each without the back-off)
    await delay(2_000)
    expect(b.tasks!.claimer.stats.pulls - idle[0]!).toBeLessThanOrEqual(2)
    expect(c.tasks!.claimer.stats.pulls - idle[1]!).toBeLessThanOrEqual(2)
    // a runs nothing, and without a handoff it stores the task and offers it to a runner
    a.tasks!.service.handoff = undefined
    const before = [b, c].map(n => n.tasks!.claimer.stats.pulls)
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'moving' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    const offered = [b, c].findIndex(n => n.tasks!.claimer.stats.offersReceived > 0)
    expect(offered).toBeGreaterThanOrEqual(0)
    const runner = [b, c][offered]!
    // back to 100 ms, then 200 and 400 (0.7 s), where the cap would take 4.8 s
    await waitFor(() => runner.tasks!.claimer.stats.pulls >= before[offered]! + 3, { what: 'three pulls soon after the offer', timeoutMs: 3_500 })
  })
})
