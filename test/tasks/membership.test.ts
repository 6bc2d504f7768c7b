import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { Membership } from '../../node/tasks/placement.js'
import { ReplicaSets } from '../../node/tasks/replica-sets.js'
import { Store } from '../../node/store/store.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { makePeer } from '../helpers/peers.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { PresenceService } from '../../protocols/presence/index.js'
import type { Testnet } from '../../sim/testnet.js'

const WINDOW = 60_000
const T0 = 1_700_000_000_000

describe('members past the window', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('are forgotten, but never below R: the most recently seen stay, also across a restart', async () => {
    const ids = (await Promise.all(Array.from({ length: 6 }, makePeer))).map(p => p.id)
    const [self, a, b, c, d, e] = ids as [string, string, string, string, string, string]
    const store = await Store.open({ path: await tmp() })
    const clock = { now: T0 }
    let live: string[] = [a, b, c]
    const made: Membership[] = []
    const membershipAt = (): Membership => made[made.push(new Membership({ self, liveIds: () => live, meta: store.meta, windowMs: WINDOW, replicationFactor: 3, replicaSets: new ReplicaSets({ liveIds: () => live } as unknown as PresenceService, 3), now: () => clock.now })) - 1] as Membership
    try {
      const m = membershipAt()
      m.refresh()
      clock.now += 1_000
      live = [d, e]
      m.refresh()
      // a, b, c silent past the window: forgotten, as d and e were seen within it
      clock.now += WINDOW
      live = []
      expect(m.members().sort()).toEqual([self, d, e].sort())
      // d and e silent past it too, and nobody else seen: kept, so a placement still needs one of them
      clock.now += 10 * WINDOW
      expect(m.members().sort()).toEqual([self, d, e].sort())
      expect(m.choose('ab'.repeat(32)).members).toHaveLength(3)
      await m.save()
      // restarted a day later, alone: the same
      clock.now += 24 * 3_600_000
      const again = membershipAt()
      await again.load()
      expect(again.members().sort()).toEqual([self, d, e].sort())
      // once new peers are seen, the old ones go as usual
      live = [a, b]
      again.refresh()
      expect(again.members().sort()).toEqual([self, a, b].sort())
    } finally {
      // a newly seen member is saved in the background: done before the store closes
      for (const m of made) await m.save()
      await store.close()
    }
  })

  it('a newly seen peer whose save fails (the store closed under it) is counted and logged, and the process carries on', async () => {
    const ids = (await Promise.all(Array.from({ length: 3 }, makePeer))).map(p => p.id)
    const [self, a, b] = ids as [string, string, string]
    const store = await Store.open({ path: await tmp() })
    let live = [a]
    const logged: string[] = []
    const m = new Membership({ self, liveIds: () => live, meta: store.meta, windowMs: WINDOW, replicationFactor: 3, replicaSets: new ReplicaSets({ liveIds: () => live } as unknown as PresenceService, 3), log: (format, ...args) => logged.push(`${format} ${args.join(' ')}`) })
    m.refresh()
    await m.save()
    await store.close()
    // a presence seen during a stop: saved in the background, and that save's rejection was unhandled
    live = [a, b]
    m.refresh()
    await waitFor(() => m.stats.saveFailures === 1, { what: 'the failed save to be counted', timeoutMs: 5_000 })
    // a store closed by a stop did not fail a write: nothing to restart for
    expect(store.writeFailure).toBeUndefined()
    expect(logged.join('\n')).toMatch(/saving the members seen failed/)
    expect(m.members().sort()).toEqual([self, a, b].sort())
  })

  it('a node cut off from its mesh for longer than the window still refuses submits with 503, not acknowledges them alone', async () => {
    const tasks = { ...FAST_TASKS, agents: [echoAgent], membershipWindowMs: 1_000 }
    net = await createTestnet(3, { baseDir: await tmp(), tasks })
    await net.ready()
    const lone = net.nodes[0]!
    const [, b, c] = net.nodes.map(n => n.peerId.toString())
    await net.nodes[1]!.stop()
    await net.nodes[2]!.stop()
    // both gone from the live view and silent longer than the window
    await waitFor(async () => [b, c].every(id => lone.tasks!.membership.silentFor(id as string) > 2_000), { what: 'the others to be silent past the window', timeoutMs: 30_000 })
    const err = await lone.tasks!.service.submit({ capability: 'echo', input: 'alone' }).then(() => undefined, (e: Error) => e)
    expect(err?.name).toBe('QuorumUnavailableError')
    expect(lone.tasks!.membership.choose('cd'.repeat(32)).members).toHaveLength(3)
  })
})
