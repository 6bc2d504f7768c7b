import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { RECORDS_PROTOCOL, offerAnswerSchema } from '../../protocols/records/index.js'
import { RpcEndpoint } from '../../protocols/rpc/index.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { gatedAgent } from '../helpers/gated.js'
import { useTmpDirs } from '../helpers/tmp.js'
import { quiet } from '../helpers/quiet-log.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'

/** Only offers move tasks here: re-announcements and pulls are pushed out of the test's time. */
// leases and a lag limit that a busy machine does not trip: nothing else would bring a dropped task back
const OFFERS_ONLY = { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, reannounceBaseMs: 60_000, reannounceCapMs: 60_000, pullIntervalMs: 60_000 }

/** Only re-announcements move a stored task here: no pulls, and leases a busy machine does not lose. */
const REANNOUNCES_ONLY = { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, reannounceBaseMs: 100, reannounceCapMs: 200, reannounceOffers: 2, pullIntervalMs: 60_000 }

/** The net ready, with every node seeing node 1, the only runner, with a free slot. */
async function runnerSeenFree (net: Testnet): Promise<{ a: AgentNode, b: AgentNode }> {
  await net.ready()
  const [a, b] = [net.nodes[0]!, net.nodes[1]!]
  await waitFor(() => net.nodes.every(n => n.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'echo' }).includes(b.peerId.toString())), { what: 'every node to see the runner with a free slot' })
  return { a, b }
}

function sum (net: Testnet, get: (n: AgentNode) => number): number {
  return net.nodes.reduce((total, n) => total + get(n), 0)
}

async function completed (node: AgentNode, ids: string[]): Promise<string[]> {
  const views = await Promise.all(ids.map(async id => node.tasks!.service.waitFor(id, 30_000)))
  return views.map(v => v.record.final?.state ?? 'unfinished')
}

/** A `gated` agent of one slot whose runs wait for `open`, each input noted in `order` as its run starts. */
function orderedGate (): { agent: Agent, open: () => void, order: unknown[] } {
  let open!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  const order: unknown[] = []
  return { agent: { name: 'gated', capabilities: ['gated'], concurrency: 1, run: async ctx => { order.push(ctx.input); await opened; return ctx.input } }, open, order }
}

/** The net ready, and node 1's one slot busy with a task submitted on node 0, as every node sees it. */
async function oneBusyRunner (net: Testnet): Promise<{ a: AgentNode, b: AgentNode, busy: string }> {
  await net.ready()
  const [a, b] = [net.nodes[0]!, net.nodes[1]!]
  const { id } = await a.tasks!.service.submit({ capability: 'gated', input: 'busy' })
  const seesBusy = (n: AgentNode): boolean => n.tasks!.presence.live().find(p => p.peerId === b.peerId.toString())?.freeSlots.gated === 0
  await waitFor(() => b.tasks!.executor.running().length === 1 && net.nodes.every(seesBusy), { what: 'the one capable peer busy, as every node sees it' })
  return { a, b, busy: id }
}

describe('offers: new tasks handed straight to the peer that runs them', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('takes the good tasks of an offer batch and refuses a forged one, counted', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...OFFERS_ONLY, agents: i === 1 ? [echoAgent] : [] } }) })
    await net.ready()
    const [a, b] = [net.nodes[0]!, net.nodes[1]!]
    // stored on their placements and offered to no one yet
    const records = [0, 1, 2].map(i => {
      const task = makeTask({ capability: 'echo', input: `offered ${i}`, submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
      return newRecord(task, a.tasks!.membership.choose(task.id))
    })
    for (const r of records) await a.tasks!.service.storeOnPlacement(r)
    const forged = { ...records[1]!.task, input: 'not what the id hashes' }
    // a plain peer that speaks the records protocol sends the batch
    const sender = await net.addNode({ tasks: false })
    await sender.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    const client = new RpcEndpoint(sender.libp2p, { protocol: RECORDS_PROTOCOL, handler: async () => ({}), log: quiet })
    await client.start()
    const answer = await client.request(b.peerId, { op: 'offer', items: [records[0]!, { task: forged, placement: records[1]!.placement }, records[2]!].map(r => ({ task: r.task, placement: r.placement })) }, { schema: offerAnswerSchema })
    await client.stop()
    expect(answer.taken.sort()).toEqual([records[0]!.task.id, records[2]!.task.id].sort())
    expect(b.tasks!.claimer.stats.offersRefused).toBe(1)
    expect(await completed(a, [records[0]!.task.id, records[2]!.task.id])).toEqual(['completed', 'completed'])
    // the real task behind the forged copy is untouched: still waiting for a taker
    expect((await a.tasks!.service.get(records[1]!.task.id)).record.attempts).toEqual([])
  })

  it('a submitter that runs the task itself claims it with the store: one acquire per member carrying the record, no put and no offer', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...OFFERS_ONLY, agents: [echoAgent] } })
    await net.ready()
    const a = net.nodes[0]!
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'claimed with its store' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    // a wait wakes once the certificate is stored here, before the run's own bookkeeping and the last member's commit
    await waitFor(async () => a.tasks!.executor.stats.completed === 1 && (await Promise.all(net!.nodes.map(async n => n.tasks!.replica.get(id)))).every(c => c.result !== undefined), { what: 'the run counted and every member holding the result' })
    expect(a.tasks!.executor.stats.completed).toBe(1)
    expect(a.tasks!.offerer.stats.offered).toBe(0)
    const served = net.nodes.slice(1).map(n => n.tasks!.handlerStats.served ?? {})
    for (const s of served) {
      expect(s['records.put']).toBeUndefined()
      expect(s['lease.acquire']).toBe(1)
    }
    // every member holds the record, with the one attempt the submitter ran, and the certified result
    for (const node of net.nodes) {
      const { record, result } = await node.tasks!.replica.get(id)
      expect(record?.attempts.map(x => [x.peer, x.outcome])).toEqual([[a.peerId.toString(), 'completed']])
      expect(result?.value).toBe('claimed with its store')
    }
  })

  it('passes what a busy peer declines to the next one, whose queue keeps it, and runs every task', async () => {
    // one slot each, held until the test opens it: a busy peer stays busy however slow the machine
    const { agent: gated, open } = gatedAgent('ran', 1)
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...OFFERS_ONLY, claimRanks: 2, agents: i === 0 ? [] : [gated] } }) })
    await net.ready()
    const a = net.nodes[0]!
    // the submitter must see both free slots, or it offers to one peer alone, which queues them all
    const freeSlots = (): number => a.tasks!.presence.live().filter(p => !p.self && (p.freeSlots.gated ?? 0) > 0).length
    await waitFor(() => freeSlots() === 2, { what: "the submitter to see both peers' free slots" })
    const entries = await a.tasks!.service.submitMany(Array.from({ length: 8 }, (_, i) => ({ capability: 'gated', input: i })))
    const ids = entries.map(e => { if ('error' in e) throw e.error; return e.id })
    const offers = a.tasks!.offerer.stats
    await waitFor(() => offers.taken + offers.declined === 8, { what: 'every offer answered' })
    expect(offers).toMatchObject({ offered: 8, taken: 8, declined: 0 })
    // two peers with one slot each took two at once: the rest were declined, passed on, and queued
    expect(offers.passedOn).toBeGreaterThan(0)
    const queued = net.nodes.slice(1).reduce((n, node) => n + node.tasks!.claimer.stats.offersQueued, 0)
    expect(queued).toBe(6)
    open()
    expect(await completed(a, ids)).toEqual(ids.map(() => 'completed'))
    const runs = (): number => net!.nodes.reduce((n, node) => n + node.tasks!.executor.stats.completed, 0)
    await waitFor(() => runs() >= 8, { what: 'every run counted' })
    expect(runs()).toBe(8)
  })

  it('settles the copies peers kept without being members: nothing stays active once the task is done', async () => {
    net = await createTestnet(5, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [echoAgent] } })
    await net.ready()
    const a = net.nodes[0]!
    // announced to everyone instead of offered: every capable peer ranked high enough keeps a copy
    a.tasks!.offerer.offer = (task, placement) => { void a.tasks!.gossip.announceTask(task, placement) }
    // and not claimed with its store, which a submitter that is a member does when it has a free slot,
    // nor handed to a member that does
    a.tasks!.service.ownRuns = undefined
    a.tasks!.service.handoff = undefined
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'kept here and there' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    const holders = (): AgentNode[] => net!.nodes.filter(n => n.tasks!.replica.hashes.has(id))
    expect(holders().length).toBeGreaterThan(3)
    // no completion notice reaches them: each reads the placement a lease after it kept the copy
    await waitFor(() => holders().every(n => !n.tasks!.replica.active.has(id)), { what: 'every kept copy to settle', timeoutMs: 20_000 })
    for (const n of holders()) expect((await n.tasks!.replica.get(id)).record?.final?.state).toBe('completed')
  })
  // copies read in the order kept: under overload the first few hundred unsettled ones took every
  // read, again and again, and the rest stayed pending for ever (a GET of one settled it)
  it('reads the longest overdue kept copy first: a copy behind many that do not settle still settles', async () => {
    const tasks = { ...FAST_TASKS, agents: [], reannounceCapMs: 300 }
    net = await createTestnet(4, { baseDir: await tmp(), tasks })
    await net.ready()
    const a = net.nodes[0]!
    let id = ''
    let placement = { epoch: 0, members: [] as string[] }
    // a task placed on the submitter, so that the one node outside its placement never saw it
    for (let i = 0; i < 30 && !placement.members.includes(a.peerId.toString()); i++) {
      ({ id } = await a.tasks!.service.submit({ capability: 'nobody-runs-this', input: i }))
      placement = (await a.tasks!.service.get(id)).record.placement
    }
    expect(placement.members).toContain(a.peerId.toString())
    await a.tasks!.service.cancel(id)
    const outside = net.nodes.find(n => !placement.members.includes(n.peerId.toString()))!
    const task = (await a.tasks!.service.get(id)).record.task
    expect((await outside.tasks!.replica.get(id)).record).toBeUndefined()
    // 200 copies of tasks their placement does not know (they never settle), kept before the stale one
    for (let i = 0; i < 200; i++) {
      const unknown = makeTask({ capability: 'nobody-runs-this', input: `unknown ${i}`, submitter: outside.peerId.toString(), maxAttempts: 1, timeoutMs: 1000, deadline: Date.now() + 3_600_000 })
      await outside.tasks!.replica.put(newRecord(unknown, placement))
    }
    await outside.tasks!.replica.put(newRecord(task, placement))
    await waitFor(async () => (await outside.tasks!.replica.get(id)).record?.final?.state === 'canceled', { what: 'the stale copy to settle', timeoutMs: 20_000 })
  })

  it('holds re-announcements while every capable peer is busy, and sends one once a slot frees', async () => {
    const { agent: gated, open } = orderedGate()
    // only re-announcements move a stored task here: no pulls
    const tasks = { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, presenceEarlyGapMs: 0, reannounceBaseMs: 100, reannounceCapMs: 200, pullIntervalMs: 60_000 }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 1 ? [gated] : [] } }) })
    const { a, b, busy } = await oneBusyRunner(net)
    // stored on its placement and offered to no one: only a re-announcement would bring it to b.
    // Swept by another member than b: b, the busy peer, would queue it itself (the test below)
    let task = makeTask({ capability: 'gated', input: 'waits for a slot', submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    for (let i = 0; a.tasks!.membership.choose(task.id).members[0] === b.peerId.toString(); i++) task = makeTask({ ...task, input: `waits for a slot ${i}` })
    const record = newRecord(task, a.tasks!.membership.choose(task.id))
    await a.tasks!.service.storeOnPlacement(record)
    const sweepers = () => net!.nodes.map(n => n.tasks!.sweeper.stats)
    const sent = sweepers().reduce((sum, st) => sum + st.reannounced, 0)
    await waitFor(() => sweepers().reduce((sum, st) => sum + st.reannounceHeld, 0) >= 5, { what: 'held re-announcements' })
    expect(sweepers().reduce((sum, st) => sum + st.reannounced, 0)).toBe(sent)
    expect(b.tasks!.claimer.stats.announcementsSeen).toBe(0)
    open()
    expect(await completed(a, [busy, task.id])).toEqual(['completed', 'completed'])
    expect(sweepers().reduce((sum, st) => sum + st.reannounced, 0)).toBeGreaterThan(sent)
  })

  // a gossiped re-announcement is checked by every capable peer: 50 nodes offered 100 tasks/s saw 60
  // announcements a task, where an offer is one request to a peer that would claim it
  it('re-announces an unclaimed task as an offer to a capable peer with a free slot, and gossips nothing', async () => {
    // every re-announcement an offer: a slow claim on a busy machine must not let one be gossiped
    const tasks = { ...REANNOUNCES_ONLY, reannounceOffers: 1_000 }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 1 ? [echoAgent] : [] } }) })
    const { a, b } = await runnerSeenFree(net)
    const task = makeTask({ capability: 'echo', input: 'offered again', submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    // stored on its placement and offered to no one: only a re-announcement brings it to b
    await a.tasks!.service.storeOnPlacement(newRecord(task, a.tasks!.membership.choose(task.id)))
    expect(await completed(a, [task.id])).toEqual(['completed'])
    expect(sum(net, n => n.tasks!.offerer.stats.reoffered)).toBeGreaterThanOrEqual(1)
    expect(b.tasks!.claimer.stats.offersTaken).toBeGreaterThanOrEqual(1)
    expect(sum(net, n => n.tasks!.sweeper.stats.reannouncedByGossip + n.tasks!.offerer.stats.regossiped)).toBe(0)
    expect(sum(net, n => n.tasks!.claimer.stats.announcementsSeen)).toBe(0)
  })

  it('gossips a re-offer that every peer asked declined, at once', async () => {
    // no re-announcement is ever gossiped by the sweeper here: only the declined offer's gossip reaches b
    const tasks = { ...REANNOUNCES_ONLY, reannounceOffers: 1_000 }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 1 ? [echoAgent] : [] } }) })
    const { a, b } = await runnerSeenFree(net)
    // the runner declines every offer, as a peer whose free slot was gone since its presence would
    let declined = 0
    b.tasks!.claimer.takeOffers = items => { declined += items.length; return [] }
    const task = makeTask({ capability: 'echo', input: 'gossiped when declined', submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    await a.tasks!.service.storeOnPlacement(newRecord(task, a.tasks!.membership.choose(task.id)))
    expect(await completed(a, [task.id])).toEqual(['completed'])
    expect(declined).toBeGreaterThanOrEqual(1)
    expect(sum(net, n => n.tasks!.offerer.stats.regossiped)).toBeGreaterThanOrEqual(1)
    expect(sum(net, n => n.tasks!.sweeper.stats.reannouncedByGossip)).toBe(0)
    expect(b.tasks!.claimer.stats.announcementsSeen).toBeGreaterThanOrEqual(1)
  })

  it('keeps the oldest of the tasks offered while busy and runs them oldest first: a full queue lets its youngest go for an older one', async () => {
    const { agent: gated, open, order } = orderedGate()
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...OFFERS_ONLY, offerQueueLimit: 2, agents: i === 1 ? [gated] : [] } }) })
    const { a, b, busy } = await oneBusyRunner(net)
    // stored on their placements; offered here by hand, as a submitter would while b is busy
    const stored = async (input: string, ageMs: number): Promise<{ task: ReturnType<typeof makeTask>, placement: ReturnType<typeof newRecord>['placement'] }> => {
      const task = makeTask({ capability: 'gated', input, submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 120_000, now: Date.now() - ageMs })
      const record = newRecord(task, a.tasks!.membership.choose(task.id))
      await a.tasks!.service.storeOnPlacement(record)
      return { task, placement: record.placement }
    }
    const [young1, young2, old] = [await stored('young 1', 2_000), await stored('young 2', 1_000), await stored('old', 60_000)]
    const offer = (o: typeof old): string[] => b.tasks!.claimer.takeOffers([{ ...o, queue: true }])
    expect([offer(young1), offer(young2)]).toEqual([[young1.task.id], [young2.task.id]])
    // the queue is full: before, the older task was declined, and waited behind the younger ones
    expect(offer(old)).toEqual([old.task.id])
    expect(b.tasks!.claimer.stats.offersLetGo).toBe(1)
    open()
    expect(await completed(a, [busy, old.task.id, young1.task.id])).toEqual(['completed', 'completed', 'completed'])
    expect(order.slice(0, 3)).toEqual(['busy', 'old', 'young 1'])
  })

  it('queues a re-announcement held while every peer is busy in its sweeper\'s own queue, when older than what that keeps', async () => {
    const { agent: gated, open, order } = orderedGate()
    const tasks = { ...REANNOUNCES_ONLY, presenceEarlyGapMs: 0, offerQueueLimit: 1 }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 1 ? [gated] : [] } }) })
    const { a, b, busy } = await oneBusyRunner(net)
    // b's queue holds a young task; an old one, swept by b (its placement's first member), is held
    const young = makeTask({ capability: 'gated', input: 'young', submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 120_000 })
    const youngRecord = newRecord(young, a.tasks!.membership.choose(young.id))
    await a.tasks!.service.storeOnPlacement(youngRecord)
    expect(b.tasks!.claimer.takeOffers([{ task: young, placement: youngRecord.placement, queue: true }])).toEqual([young.id])
    let old: ReturnType<typeof makeTask> | undefined
    for (let i = 0; old === undefined; i++) {
      const task = makeTask({ capability: 'gated', input: `old ${i}`, submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 120_000, now: Date.now() - 60_000 })
      if (a.tasks!.membership.choose(task.id).members[0] === b.peerId.toString()) old = task
    }
    await a.tasks!.service.storeOnPlacement(newRecord(old, a.tasks!.membership.choose(old.id)))
    // before, held alone: it waited for a free slot behind the young task
    await waitFor(() => b.tasks!.sweeper.stats.heldQueuedHere >= 1, { what: 'the old task queued at b in the young one\'s place' })
    expect(b.tasks!.claimer.stats.offersLetGo).toBe(1)
    open()
    expect(await completed(a, [busy, old.id])).toEqual(['completed', 'completed'])
    expect(order.slice(0, 2)).toEqual(['busy', old.input])
  })

  it('declines an offer of a task whose claims here are backing off, as an announcement of it would be skipped', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...OFFERS_ONLY, agents: i === 1 ? [echoAgent] : [] } }) })
    const { a, b } = await runnerSeenFree(net)
    const task = makeTask({ capability: 'echo', input: 'backed off', submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    const record = newRecord(task, a.tasks!.membership.choose(task.id))
    await a.tasks!.service.storeOnPlacement(record)
    // as after claims of it failed here: the back-off is the claimer's own, stubbed for this task
    const retries = (b.tasks!.claimer as unknown as { retries: { waiting: (id: string) => boolean } }).retries
    const waiting = retries.waiting.bind(retries)
    retries.waiting = id => id === task.id || waiting(id)
    const backedOff = b.tasks!.claimer.stats.claimsBackedOff
    expect(b.tasks!.claimer.takeOffers([{ task, placement: record.placement, queue: true }])).toEqual([])
    expect(b.tasks!.claimer.stats.claimsBackedOff).toBe(backedOff + 1)
    retries.waiting = waiting
    expect(b.tasks!.claimer.takeOffers([{ task, placement: record.placement, queue: true }])).toEqual([task.id])
    expect(await completed(a, [task.id])).toEqual(['completed'])
  })

  it('gossips the re-announcement that follows reannounceOffers offers that were taken and not run', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...REANNOUNCES_ONLY, agents: i === 1 ? [echoAgent] : [] } }) })
    const { a, b } = await runnerSeenFree(net)
    // the runner takes every offer and drops it, as a peer that never claims would
    let dropped = 0
    b.tasks!.claimer.takeOffers = items => { dropped += items.length; return items.map(item => item.task.id) }
    const task = makeTask({ capability: 'echo', input: 'gossiped at last', submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    await a.tasks!.service.storeOnPlacement(newRecord(task, a.tasks!.membership.choose(task.id)))
    expect(await completed(a, [task.id])).toEqual(['completed'])
    expect(dropped).toBeGreaterThanOrEqual(REANNOUNCES_ONLY.reannounceOffers)
    expect(sum(net, n => n.tasks!.sweeper.stats.reannouncedByGossip)).toBeGreaterThanOrEqual(1)
    expect(b.tasks!.claimer.stats.announcementsSeen).toBeGreaterThanOrEqual(1)
  })

  it('offers a failed attempt\'s retry again, though the task had used its offers before', async () => {
    const tasks = { ...REANNOUNCES_ONLY, reannounceCapMs: 1_000 }
    // fails its first attempt: the retry comes due after retryAfterMs
    const failsOnce = { ...echoAgent, run: async (ctx: { attempt: number, input: unknown }) => { if (ctx.attempt === 1) throw new Error('first attempt fails'); return ctx.input } }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 1 ? [failsOnce] : [] } }) })
    const { a, b } = await runnerSeenFree(net)
    // the runner drops the first reannounceOffers offers, so the first attempt comes by gossip
    const takeOffers = b.tasks!.claimer.takeOffers.bind(b.tasks!.claimer)
    let dropped = 0
    b.tasks!.claimer.takeOffers = items => {
      if (dropped >= REANNOUNCES_ONLY.reannounceOffers) return takeOffers(items)
      dropped += items.length
      return items.map(item => item.task.id)
    }
    const task = makeTask({ capability: 'echo', input: 'retried by offer', submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    await a.tasks!.service.storeOnPlacement(newRecord(task, a.tasks!.membership.choose(task.id)))
    expect(await completed(a, [task.id])).toEqual(['completed'])
    expect((await a.tasks!.service.get(task.id)).record.attempts.length).toBe(2)
    expect(b.tasks!.claimer.stats.announcementsSeen).toBeGreaterThanOrEqual(1)
    // the retry reached the runner as an offer, which it took: the sweeper re-offered, not gossiped
    expect(b.tasks!.claimer.stats.offersTaken).toBeGreaterThanOrEqual(1)
  })
})
