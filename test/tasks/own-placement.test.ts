import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { Membership } from '../../node/tasks/placement.js'
import { ReplicaSets } from '../../node/tasks/replica-sets.js'
import { Store } from '../../node/store/store.js'
import { hasValidId, makeTaskWhere } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { makePeer } from '../helpers/peers.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { PresenceService } from '../../protocols/presence/index.js'
import type { Testnet } from '../../sim/testnet.js'

const BASE = { capability: 'echo', maxAttempts: 3, timeoutMs: 1_000, deadline: 2_000_000_000_000, now: 1_700_000_000_000 }

describe('a submitter that runs its task itself places it with itself', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('makeTaskWhere: every id is the hash of the task\'s content, and one the test accepts when a try finds it', async () => {
    const { id: submitter } = await makePeer()
    // inputs that hold the nonce's own field name, large ones, and nested ones: the id is still the content hash
    const inputs = ['x', { '"nonce":"': 'a"nonce":"b', nonce: 'z' }, 'y'.repeat(200_000), [1, { nonce: '"nonce":"' }], null]
    for (const input of inputs) {
      const task = makeTaskWhere({ ...BASE, submitter, input }, id => id[0] === '0', 200)
      expect(hasValidId(task)).toBe(true)
      expect(task.id[0]).toBe('0')
      expect(task.input).toEqual(input)
      // none accepted: the first nonce's task, still valid
      const first = makeTaskWhere({ ...BASE, submitter, input }, () => false, 50)
      expect(hasValidId(first)).toBe(true)
    }
    // an idempotency key fixes the id: no nonce is tried
    let asked = 0
    const keyed = makeTaskWhere({ ...BASE, submitter, input: 1, idempotencyKey: 'k' }, () => { asked++; return true }, 50)
    expect(asked).toBe(0)
    expect(keyed.nonce).toBeUndefined()
    expect(hasValidId(keyed)).toBe(true)
  })

  it('Membership.includesSelf says what choose would: whether this node is among the R nearest', async () => {
    const peers = await Promise.all(Array.from({ length: 12 }, async () => makePeer()))
    const ids = peers.map(p => p.id)
    const store = await Store.open({ path: await tmp() })
    const saved: Array<() => Promise<void>> = []
    try {
      const presence = { liveIds: () => ids.slice(1) } as unknown as PresenceService
      const membership = new Membership({ self: ids[0]!, liveIds: () => ids.slice(1), meta: store.meta, windowMs: 60_000, replicationFactor: 3, replicaSets: new ReplicaSets(presence, 3) })
      saved.push(async () => membership.save())
      const includes = membership.includesSelf()
      let inside = 0
      for (let i = 0; i < 400; i++) {
        const task = makeTaskWhere({ ...BASE, submitter: ids[0]!, input: i }, () => true, 1)
        const chosen = membership.choose(task.id).members.includes(ids[0]!)
        expect(includes(task.id)).toBe(chosen)
        if (chosen) inside++
      }
      // both answers are exercised: a quarter on average (3 of 12), though one node's share of XOR
      // space among 12 random peer ids can be a tenth or less (a CI run saw 40 of 400)
      expect(inside).toBeGreaterThan(0)
      expect(inside).toBeLessThan(400)
      // a mesh no larger than R places every task with every member
      const small = new Membership({ self: ids[0]!, liveIds: () => ids.slice(1, 3), meta: store.meta, windowMs: 60_000, replicationFactor: 3, replicaSets: new ReplicaSets(presence, 3) })
      saved.push(async () => small.save())
      expect(small.includesSelf()('ab'.repeat(32))).toBe(true)
    } finally {
      // a newly seen member is saved in the background: done before the store closes
      for (const save of saved) await save()
      await store.close()
    }
  })

  it('tasks submitted where they run are placed with their submitter and run there, no handoff; with one try they spread', async () => {
    // no lease is meant to lapse here, nor a lagging node to stop running its own tasks: on a loaded
    // machine a 500 ms lease lapsed until a task was dead
    const steady = { ...FAST_TASKS, agents: [echoAgent], leaseMs: 5_000, claimLagLimitMs: 60_000 }
    net = await createTestnet(6, { baseDir: await tmp(), tasks: { ...steady, ownPlacementTries: 32 } })
    await net.ready()
    const a = net.nodes[0]!
    const me = a.peerId.toString()
    for (let i = 0; i < 12; i++) {
      const { id } = await a.tasks!.service.submit({ capability: 'echo', input: i })
      const view = await a.tasks!.service.waitFor(id, 10_000)
      expect(view.record.final?.state).toBe('completed')
      expect(view.record.placement.members).toContain(me)
      expect(hasValidId(view.record.task)).toBe(true)
    }
    expect(a.tasks!.handoff.stats.sent).toBe(0)
    await net.stop()
    // the default, one try: a submitter is a member of about half (3 of 6), and hands the others on
    net = await createTestnet(6, { baseDir: await tmp(), tasks: steady })
    await net.ready()
    const b = net.nodes[0]!
    let outside = 0
    for (let i = 0; i < 24; i++) {
      const { id } = await b.tasks!.service.submit({ capability: 'echo', input: i })
      if (!(await b.tasks!.service.get(id)).record.placement.members.includes(b.peerId.toString())) outside++
    }
    expect(outside).toBeGreaterThan(0)
  })
})
