import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent, sleepAgent } from '../../node/agents/basic.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

const RARELY = 600_000

/**
 * Stores `count` sleep tasks submitted to node 0 (which runs nothing and hands nothing on) while
 * node 1's claimer is stopped, so that it hears of none of them; then starts that claimer again.
 */
async function storedUnseen (net: Testnet, count: number, ms: number): Promise<string[]> {
  const [a, b] = [net.nodes[0]!, net.nodes[1]!]
  a.tasks!.service.handoff = undefined
  await b.tasks!.claimer.stop()
  const ids: string[] = []
  for (let i = 0; i < count; i++) ids.push((await a.tasks!.service.submit({ capability: 'sleep', input: { ms: ms + i } })).id)
  b.tasks!.claimer.start()
  return ids
}

async function allCompleted (net: Testnet, ids: string[]): Promise<boolean> {
  const states = await Promise.all(ids.map(async id => (await net.nodes[0]!.tasks!.service.get(id)).record.final?.state))
  return states.every(s => s === 'completed')
}

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
    const b = net.nodes[1]!
    const ids = await storedUnseen(net, 12, 20)
    await b.tasks!.claimer.pull()
    // one pull takes two (b's free sleep slots); each sleep slot that frees pulls the next ones
    await waitFor(async () => await allCompleted(net!, ids), { what: 'all twelve completed', timeoutMs: 30_000 })
    expect(b.tasks!.claimer.stats.pullsAgain).toBeGreaterThan(0)
  })

  it('a pull that left tasks out as too young pulls again when they come of age, not a pull interval later', async () => {
    const slow = { pullIntervalMs: RARELY, pullIntervalCapMs: RARELY, pullMinAgeMs: 8_000, reannounceBaseMs: RARELY, reannounceCapMs: RARELY }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, ...slow, agents: i === 1 ? [sleepAgent] : [] } }) })
    await net.ready()
    const b = net.nodes[1]!
    const ids = await storedUnseen(net, 3, 10)
    // it is b's own list that tells when a task left out comes of age: a submit is acknowledged at a
    // majority, and b's copies may come after (under load, after the pull below; then nothing was due)
    await waitFor(async () => (await Promise.all(ids.map(async id => (await b.tasks!.replica.get(id)).record))).every(r => r !== undefined), { what: 'b to hold the three records', timeoutMs: 10_000 })
    const pullsBefore = b.tasks!.claimer.stats.pulls
    // at once: every task is younger than pullMinAgeMs, so this pull takes none
    await b.tasks!.claimer.pull()
    expect(b.tasks!.claimer.stats.pulledTasks).toBe(0)
    await waitFor(async () => await allCompleted(net!, ids), { what: 'the three completed by the pull when they came of age', timeoutMs: 30_000 })
    expect(b.tasks!.claimer.stats.pulls - pullsBefore).toBeGreaterThanOrEqual(2)
  })

  it('a node with no copy of the tasks a peer left out as too young learns from that peer when they come of age', async () => {
    // the minimum age leaves room for a slow machine's submits before the first pull
    const slow = { pullIntervalMs: RARELY, pullIntervalCapMs: RARELY, pullMinAgeMs: 10_000, reannounceBaseMs: RARELY, reannounceCapMs: RARELY }
    net = await createTestnet(5, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, ...slow, pullPeers: 4, agents: i === 1 ? [sleepAgent] : [] } }) })
    await net.ready()
    const [a, b] = [net.nodes[0]!, net.nodes[1]!]
    a.tasks!.service.handoff = undefined
    await b.tasks!.claimer.stop()
    // tasks whose placement leaves b out, so b holds no copy: any other is canceled (a final task
    // is not claimable, so b's own list tells nothing of it)
    const ids: string[] = []
    for (let i = 0; ids.length < 2 && i < 40; i++) {
      const { id } = await a.tasks!.service.submit({ capability: 'sleep', input: { ms: 10 + i } })
      const { placement } = (await a.tasks!.service.get(id)).record
      if (placement.members.includes(b.peerId.toString())) await a.tasks!.service.cancel(id)
      else ids.push(id)
    }
    expect(ids).toHaveLength(2)
    b.tasks!.claimer.start()
    // at once: both are younger than pullMinAgeMs, so this pull takes none; only the peers' answers
    // say when they come of age (before, b pulled again a pull interval later: ten minutes here)
    await b.tasks!.claimer.pull()
    expect(b.tasks!.claimer.stats.pulledTasks).toBe(0)
    await waitFor(async () => await allCompleted(net!, ids), { what: 'the two completed by the pull when they came of age', timeoutMs: 40_000 })
  }, 90_000)
})
