import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent, sleepAgent } from '../../node/agents/basic.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

const RARELY = 600_000

describe('a pull that leaves claimable tasks behind pulls again as slots free', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('a backlog no announcement or offer places drains through pulls, not one pull interval at a time', async () => {
    const twoSlots = { ...sleepAgent, concurrency: 2 }
    // pulls, re-announcements and re-offers all ten minutes apart: only pulls brought forward drain it
    const slow = { pullIntervalMs: RARELY, pullIntervalCapMs: RARELY, pullMinAgeMs: 0, reannounceBaseMs: RARELY, reannounceCapMs: RARELY }
    // b also runs echo, with 64 slots free throughout: the backlog is sleep's, whose slots are two
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, ...slow, agents: i === 1 ? [twoSlots, echoAgent] : [] } }) })
    await net.ready()
    const [a, b] = [net.nodes[0]!, net.nodes[1]!]
    a.tasks!.service.handoff = undefined
    // b hears of none of them: its claimer is stopped while they are stored on their placements
    await b.tasks!.claimer.stop()
    const ids: string[] = []
    for (let i = 0; i < 12; i++) ids.push((await a.tasks!.service.submit({ capability: 'sleep', input: { ms: 20 + i } })).id)
    b.tasks!.claimer.start()
    await b.tasks!.claimer.pull()
    // one pull takes two (b's free sleep slots); each sleep slot that frees pulls the next ones
    await waitFor(async () => {
      const states = await Promise.all(ids.map(async id => (await a.tasks!.service.get(id)).record.final?.state))
      return states.every(s => s === 'completed')
    }, { what: 'all twelve completed', timeoutMs: 30_000 })
    expect(b.tasks!.claimer.stats.pullsAgain).toBeGreaterThan(0)
  })

  it('a pull that left tasks out as too young pulls again when they come of age, not a pull interval later', async () => {
    const slow = { pullIntervalMs: RARELY, pullIntervalCapMs: RARELY, pullMinAgeMs: 5_000, reannounceBaseMs: RARELY, reannounceCapMs: RARELY }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, ...slow, agents: i === 1 ? [sleepAgent] : [] } }) })
    await net.ready()
    const [a, b] = [net.nodes[0]!, net.nodes[1]!]
    a.tasks!.service.handoff = undefined
    await b.tasks!.claimer.stop()
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await a.tasks!.service.submit({ capability: 'sleep', input: { ms: 10 + i } })).id)
    b.tasks!.claimer.start()
    const pullsBefore = b.tasks!.claimer.stats.pulls
    // at once: every task is younger than pullMinAgeMs, so this pull takes none
    await b.tasks!.claimer.pull()
    expect(b.tasks!.claimer.stats.pulledTasks).toBe(0)
    await waitFor(async () => {
      const states = await Promise.all(ids.map(async id => (await a.tasks!.service.get(id)).record.final?.state))
      return states.every(s => s === 'completed')
    }, { what: 'the three completed by the pull when they came of age', timeoutMs: 30_000 })
    expect(b.tasks!.claimer.stats.pulls - pullsBefore).toBeGreaterThanOrEqual(2)
  })
})
