import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent, sleepAgent } from '../../node/agents/basic.js'
import { RECORDS_PROTOCOL, handoffAnswerSchema } from '../../protocols/records/index.js'
import { RpcEndpoint } from '../../protocols/rpc/index.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'
import { PartitionController } from '../../sim/faults.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { submitRetrying } from '../helpers/retry.js'
import { useTmpDirs } from '../helpers/tmp.js'
import { quiet } from '../helpers/quiet-log.js'
import type { Testnet } from '../../sim/testnet.js'
import type { AgentNode } from '../../node/create-node.js'

// only the submit moves tasks: re-announcements and pulls are pushed out of the test's time
const HANDOFF_ONLY = { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, reannounceBaseMs: 60_000, reannounceCapMs: 60_000, pullIntervalMs: 60_000 }

describe('handoff: a submitter that will not run a new task hands it to a member that will', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  /** A mesh of three: a submitter that runs nothing, and two echo runners it has seen with free slots. */
  async function submitterAndTwoRunners (tasks: typeof HANDOFF_ONLY): Promise<[AgentNode, AgentNode, AgentNode]> {
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 0 ? [] : [echoAgent] } }) })
    await net.ready()
    const [a, b, c] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    await waitFor(() => a.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'echo' }).length === 2, { what: 'both runners seen with free slots', timeoutMs: 10_000 })
    return [a, b, c]
  }

  it('one handoff from the submitter, the taker\'s acquires carry the record: no put, no offer, and every member holds the one attempt and the result', async () => {
    // the submitter runs nothing itself, so the usual way would be a put to each member and an offer
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...HANDOFF_ONLY, agents: i === 0 ? [] : [echoAgent] } }) })
    await net.ready()
    const a = net.nodes[0]!
    await waitFor(() => a.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'echo' }).length === 2, { what: 'both runners seen with free slots', timeoutMs: 10_000 })
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'handed over' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    expect(a.tasks!.handoff.stats).toMatchObject({ sent: 1, taken: 1, declined: 0 })
    expect(a.tasks!.offerer.stats.offered).toBe(0)
    const [taker, other] = net.nodes.slice(1).sort((x, y) => y.tasks!.handoff.stats.accepted - x.tasks!.handoff.stats.accepted)
    expect(taker!.tasks!.handoff.stats).toMatchObject({ received: 1, accepted: 1, refused: 0 })
    expect(other!.tasks!.handoff.stats.received).toBe(0)
    // a wait wakes once a majority stored the certificate; the last member's commit may still be on its way
    await waitFor(async () => (await Promise.all(net!.nodes.map(async n => n.tasks!.replica.get(id)))).every(c => c.record?.final !== undefined && c.result !== undefined), { what: 'every member to store the certified result' })
    // the taker's own grant is a local call; each other member is asked once (the taker went on at a
    // majority of grants, so the last member's acquire may be served after the others' commits)
    const served = (node: typeof a): Record<string, number> => node.tasks!.handlerStats.served ?? {}
    await waitFor(() => net!.nodes.every(n => served(n)['lease.acquire'] === (n === taker ? undefined : 1)), { what: 'each member but the taker to serve one acquire' })
    for (const node of net.nodes) {
      expect(served(node)['records.put']).toBeUndefined()
      expect(served(node)['records.offer']).toBeUndefined()
    }
    // echo is pure: its grants certified the outcome, which the taker's answer told, and its run sent no notify after it
    expect(taker!.tasks!.handoff.stats).toMatchObject({ outcomesTold: 1, outcomesToldLate: 0 })
    expect(a.tasks!.handoff.stats.outcomesHeard).toBe(1)
    await waitFor(() => taker!.tasks!.notifier.stats.toldWithHandoff === 1, { what: 'the run to report its outcome' })
    expect(taker!.tasks!.notifier.stats.sent).toBe(0)
    expect(served(a)['records.notify']).toBeUndefined()
    for (const node of net.nodes) {
      const { record, result } = await node.tasks!.replica.get(id)
      expect(record?.attempts.map(x => [x.peer, x.outcome])).toEqual([[taker!.peerId.toString(), 'completed']])
      expect(result?.value).toBe('handed over')
    }
  })

  it('a member from before `tell` refuses the field: asked again without it until it connects again, and its notify tells the outcome', async () => {
    const [a, b, c] = await submitterAndTwoRunners(HANDOFF_ONLY)
    // as such a member's strict schema answers a request with a field it does not know
    const records = a.tasks!.components.records
    const told: string[] = []
    a.tasks!.components.records = async (peer, req, o) => {
      if (req.op !== 'handoff') return records(peer, req, o)
      if (req.tell !== undefined) told.push(peer.toString())
      return req.tell !== undefined ? { status: 'ERROR', reason: 'bad request: unrecognized key "tell"' } : records(peer, req, o)
    }
    const served = (): number => a.tasks!.handlerStats.served?.['records.notify'] ?? 0
    const submit = async (input: string): Promise<void> => {
      const { id } = await a.tasks!.service.submit({ capability: 'echo', input })
      expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    }
    // three handoffs to two members: one member is handed two
    for (const input of ['first', 'second', 'third']) await submit(input)
    expect(a.tasks!.handoff.stats).toMatchObject({ taken: 3, declined: 0, outcomesHeard: 0 })
    const takers = [b, c].filter(n => n.tasks!.handoff.stats.received > 0).map(n => n.peerId.toString())
    // asked with `tell` once per member
    expect(told.sort()).toEqual(takers.sort())
    await waitFor(() => served() === 3, { what: 'each outcome told by a notify' })
    // connected again (a restart may bring a newer version): asked with `tell` again
    for (const n of [b, c]) await a.libp2p.hangUp(n.peerId)
    for (const n of [b, c]) await a.libp2p.dial(n.libp2p.getMultiaddrs()[0]!)
    await waitFor(() => a.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'echo' }).length === 2, { what: 'both runners seen again', timeoutMs: 10_000 })
    await submit('fourth')
    expect(told.length).toBe(takers.length + 1)
  })

  it('a submitter with a handoffTimeoutMs of hours asks for the outcome in a window members take', async () => {
    // half of 3 h: over the hour the field once took, and the member refused it as a bad request
    const [a] = await submitterAndTwoRunners({ ...HANDOFF_ONLY, handoffTimeoutMs: 3 * 3_600_000 })
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'a long wait' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    expect(a.tasks!.handoff.stats).toMatchObject({ taken: 1, outcomesHeard: 1 })
  })

  it('a member whose answer leaves past the submitter\'s `tell` window tells the outcome by notify as well: the submitter may have stopped waiting', async () => {
    // the window is half of handoffTimeoutMs (2 s); the claim takes 2.5 s, inside handoffSuspectMs
    const [a, b, c] = await submitterAndTwoRunners({ ...HANDOFF_ONLY, handoffTimeoutMs: 4_000, handoffSuspectMs: 3_500 })
    for (const n of [b, c]) {
      const acquire = n.tasks!.leases.acquire.bind(n.tasks!.leases)
      n.tasks!.leases.acquire = async (...args) => { await delay(2_500); return acquire(...args) }
    }
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'late' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    const taker = [b, c].find(n => n.tasks!.handoff.stats.accepted === 1)!
    expect(taker.tasks!.handoff.stats).toMatchObject({ outcomesTold: 1, outcomesToldLate: 1 })
    await waitFor(() => taker.tasks!.notifier.stats.sent === 1, { what: 'the notify after the late answer' })
    expect(taker.tasks!.notifier.stats.toldWithHandoff).toBe(0)
  })

  it('a submitter that is not a member keeps its copy before it hands the task over: the completion notice finds it, and no wait polls', async () => {
    // the submitter runs nothing and is outside half the placements of 6 nodes; a wait that missed its
    // notice polls only at its end (30 s), longer than a task takes on any machine this runs on (5 s
    // was not, beside a loaded CI run)
    net = await createTestnet(6, { baseDir: await tmp(), perNode: i => ({ tasks: { ...HANDOFF_ONLY, waitPollBaseMs: 60_000, waitPollCapMs: 60_000, agents: i === 0 ? [] : [echoAgent] } }) })
    await net.ready()
    const a = net.nodes[0]!
    await waitFor(() => a.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'echo' }).length === 5, { what: 'every runner seen with free slots', timeoutMs: 10_000 })
    // the submitter's own write of a new copy is slow (a busy disk): longer than the task takes
    const replica = a.tasks!.replica
    const put = replica.put.bind(replica)
    const slowed = new Set<string>()
    replica.put = async (record, result) => {
      if (record.final === undefined && !slowed.has(record.task.id)) {
        slowed.add(record.task.id)
        await delay(300)
      }
      return put(record, result)
    }
    let outside = 0
    for (let i = 0; outside < 3 && i < 40; i++) {
      // a submit a busy machine's streams failed (503) is tried again, as a client would
      const { id } = await submitRetrying(async () => a.tasks!.service.submit({ capability: 'echo', input: i }))
      const view = await a.tasks!.service.waitFor(id, 30_000)
      expect(view.record.final?.state).toBe('completed')
      if (!view.record.placement.members.includes(a.peerId.toString())) outside++
    }
    expect(outside).toBe(3)
    // each wait woke on its notice; a notice that came before the copy was kept would wake nobody,
    // and the wait would poll at its end
    expect(a.tasks!.service.stats.waitPolls).toBe(0)
    // echo is pure: each outcome came with its handoff's answer
    expect(a.tasks!.handoff.stats.outcomesHeard).toBe(a.tasks!.handoff.stats.taken)
  })

  it('a member that turns out busy, with no room to lease tasks ahead (claimAheadPerSlot 0, the default), declines at once: the submitter stores and offers the task itself, and it still runs', async () => {
    const oneSlot = { ...sleepAgent, concurrency: 1 }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...HANDOFF_ONLY, claimAheadPerSlot: 0, pullIntervalMs: FAST_TASKS.pullIntervalMs, agents: i === 0 ? [] : [oneSlot] } }) })
    await net.ready()
    const [a, b, c] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    await waitFor(() => a.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'sleep' }).length === 2, { what: 'both runners seen with free slots', timeoutMs: 10_000 })
    // both slots taken where the submitter cannot see it yet: its view of free slots is a presence message old
    const slots = [b, c].map(n => n.tasks!.runtime.reserve('sleep'))
    const submitted = a.tasks!.service.submit({ capability: 'sleep', input: { ms: 1 } })
    const { id } = await submitted
    expect(a.tasks!.handoff.stats).toMatchObject({ sent: 1, taken: 0, declined: 1 })
    expect(b.tasks!.handoff.stats.accepted + c.tasks!.handoff.stats.accepted).toBe(0)
    // the member said it was busy: newer than its last presence, so it is not handed or offered the next one
    const decliner = [b, c].find(n => n.tasks!.handoff.stats.received === 1)!
    expect(a.tasks!.claimer.order({ id, capability: 'sleep' })).not.toContain(decliner.peerId.toString())
    // acknowledged the usual way: stored on a majority, then offered (or announced, once presence says both are busy)
    expect(a.tasks!.offerer.stats.offered + a.tasks!.offerer.stats.announced).toBe(1)
    const holders = await Promise.all(net.nodes.map(async n => (await n.tasks!.replica.get(id)).record !== undefined))
    expect(holders.filter(Boolean).length).toBeGreaterThanOrEqual(2)
    for (const s of slots) s?.release()
    expect((await a.tasks!.service.waitFor(id, 20_000)).record.final?.state).toBe('completed')
  })

  it('a member that turns out busy, with leasing ahead on (claimAheadPerSlot 1), leases the task with its store all the same and runs it when its slot frees: no put, no offer', async () => {
    const oneSlot = { ...sleepAgent, concurrency: 1 }
    // one runner: no other peer has a slot that the task could go to instead
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...HANDOFF_ONLY, claimAheadPerSlot: 1, agents: i === 1 ? [oneSlot] : [] } }) })
    await net.ready()
    const [a, b, c] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    await waitFor(() => a.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'sleep' }).length === 1, { what: 'the runner seen with a free slot', timeoutMs: 10_000 })
    const slots = [b.tasks!.runtime.reserve('sleep')]
    const { id } = await a.tasks!.service.submit({ capability: 'sleep', input: { ms: 1 } })
    expect(a.tasks!.handoff.stats).toMatchObject({ sent: 1, taken: 1, declined: 0 })
    const taker = b
    expect(taker.tasks!.claimer.stats.claimedAhead).toBe(1)
    expect(a.tasks!.offerer.stats.offered + a.tasks!.offerer.stats.announced).toBe(0)
    for (const s of slots) s?.release()
    expect((await a.tasks!.service.waitFor(id, 20_000)).record.final?.state).toBe('completed')
    for (const n of [b, c]) expect((n.tasks!.handlerStats.served ?? {})['records.put']).toBeUndefined()
    // the wait wakes once a majority stored the outcome: the taker's own copy may still be on its way
    await waitFor(async () => (await taker.tasks!.replica.get(id)).record?.final !== undefined, { what: "the taker's copy final" })
    const { record } = await taker.tasks!.replica.get(id)
    expect(record?.attempts.map(x => [x.peer, x.outcome])).toEqual([[taker.peerId.toString(), 'completed']])
  })

  it('a member that cannot be reached is taken as full until its next presence: one submit tries it, and the task still runs elsewhere', async () => {
    const partition = new PartitionController()
    // presence every 5 s: the cut-off member stays in the submitter's view for the whole test
    const tasks = { ...HANDOFF_ONLY, presenceIntervalMs: 5_000, pullIntervalMs: FAST_TASKS.pullIntervalMs }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 0 ? [] : [echoAgent] }, connectionGater: partition.gater(() => net?.nodes[i]?.peerId.toString()) }) })
    await net.ready()
    const [a, b, c] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    await waitFor(() => a.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'echo' }).length === 2, { what: 'both runners seen with free slots', timeoutMs: 10_000 })
    // a network that drops what is sent leaves the connections open until pings fail: the cut-off
    // member stays in view. This split closes them, which takes a peer out of view at once
    a.tasks!.presence.disconnected = () => {}
    await partition.split([[a, c], [b]])
    // a task the cut-off member ranks first for
    let record = newRecord(makeTask({ capability: 'echo', input: 0, submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 }), a.tasks!.membership.choose('0'.repeat(64)))
    for (let i = 1; a.tasks!.claimer.order(record.task)[0] !== b.peerId.toString(); i++) {
      if (i > 10_000) throw new Error('no task the cut-off member ranks first for: is it still in view?')
      record = newRecord(makeTask({ capability: 'echo', input: i, submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 }), record.placement)
    }
    expect(a.tasks!.handoff.taker(record)).toBe(b.peerId.toString())
    expect(await a.tasks!.handoff.give(b.peerId.toString(), record)).toBe(false)
    expect(a.tasks!.handoff.stats).toMatchObject({ sent: 1, taken: 0, declined: 1 })
    expect(a.tasks!.claimer.order(record.task)).toEqual([c.peerId.toString()])
    // a peer from before handoffs refuses the op: it is not taken as full, and still gets offers
    const records = a.tasks!.components.records
    a.tasks!.components.records = async (peer, req, o) => req.op === 'handoff' ? { status: 'ERROR', reason: 'bad request: Invalid input' } : records(peer, req, o)
    expect(await a.tasks!.handoff.give(c.peerId.toString(), record)).toBe(false)
    expect(a.tasks!.claimer.order(record.task)).toEqual([c.peerId.toString()])
    a.tasks!.components.records = records
    // the next submits go to the member that answers, and run
    const ids = await Promise.all([1, 2, 3].map(async i => (await a.tasks!.service.submit({ capability: 'echo', input: `after ${i}` })).id))
    for (const id of ids) expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    expect(a.tasks!.handoff.stats).toMatchObject({ sent: 5, taken: 3, declined: 2 })
  })

  it('a member silent past handoffSuspectMs is taken as full and the task handed to the next member too: it runs there, and the submits after it go there, while the silent one never answers', async () => {
    // a loaded machine's answering member may be slow too: suspected at 1 s, the silent one is still the only one never answered
    const tasks = { ...HANDOFF_ONLY, presenceIntervalMs: 60_000, handoffTimeoutMs: 30_000, handoffSuspectMs: 1_000, prerunMaxMs: 500 }
    const [a, b, c] = await submitterAndTwoRunners(tasks)
    // b is paused: its handoffs get no answer until the submitter's timeout (30 s, past this test),
    // and nothing else is heard from it (no traffic but the submits here)
    const { silenced, restore } = silenceHandoffs(a, b)
    try {
      const record = recordRankedFirst(a, b)
      await a.tasks!.replica.put(record)
      const started = performance.now()
      expect(await a.tasks!.handoff.give(b.peerId.toString(), record)).toBe(true)
      // well before b's timeout: the next member took it
      expect(performance.now() - started).toBeLessThan(10_000)
      expect(a.tasks!.handoff.stats).toMatchObject({ suspected: 1, hedged: 1, taken: 1 })
      expect(a.tasks!.claimer.order(record.task)).toEqual([c.peerId.toString()])
      expect((await a.tasks!.service.waitFor(record.task.id, 10_000)).record.final?.state).toBe('completed')
      expect((await c.tasks!.replica.get(record.task.id)).record?.attempts.map(x => x.peer)).toEqual([c.peerId.toString()])
      // the submits after it go elsewhere (to the member that answers, or stored and offered if that one was slow too), and run
      const ids = await Promise.all([1, 2, 3, 4, 5, 6].map(async n => (await a.tasks!.service.submit({ capability: 'echo', input: `after ${n}` })).id))
      for (const id of ids) expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
      // none of them was handed to the silent member
      expect(silenced).toHaveLength(1)
    } finally {
      restore()
    }
    // its timeout at last: counted as declined, as before
    const declined = a.tasks!.handoff.stats.declined
    silenced[0]!()
    await waitFor(() => a.tasks!.handoff.stats.declined === declined + 1, { what: 'the silent handoff to end' })
  })

  it('a member slow to answer a handoff but answering other requests meanwhile is taken as full and waited on, not suspected: no second claim round, and the handoff ends at handoffTimeoutMs', async () => {
    const tasks = { ...HANDOFF_ONLY, presenceIntervalMs: 60_000, handoffTimeoutMs: 4_000, handoffSuspectMs: 1_000, prerunMaxMs: 500 }
    const [a, b, c] = await submitterAndTwoRunners(tasks)
    const records = a.tasks!.components.records
    // b answers everything but the handoff: a loaded member, not a paused one
    const { silenced, restore } = silenceHandoffs(a, b)
    let asking = true
    const chatter = (async () => {
      while (asking) {
        await records(b.peerId, { op: 'get', id: 'f'.repeat(64) }).catch(() => {})
        await delay(50)
      }
    })()
    try {
      const record = recordRankedFirst(a, b)
      await a.tasks!.replica.put(record)
      const started = performance.now()
      expect(await a.tasks!.handoff.give(b.peerId.toString(), record)).toBe(false)
      expect(performance.now() - started).toBeGreaterThanOrEqual(3_900)
      expect(silenced).toHaveLength(1)
      expect(a.tasks!.handoff.stats).toMatchObject({ slow: 1, suspected: 0, hedged: 0, sent: 1, declined: 1 })
      // the submits behind it go elsewhere meanwhile
      expect(a.tasks!.claimer.order(record.task)).toEqual([c.peerId.toString()])
    } finally {
      asking = false
      await chatter
      restore()
    }
  })

  it('refuses, and counts, a handoff from a peer that is not the task\'s submitter and one for a placement without it', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...HANDOFF_ONLY, agents: [echoAgent] } })
    await net.ready()
    const [a, b] = [net.nodes[0]!, net.nodes[1]!]
    const sender = await net.addNode({ tasks: false })
    await sender.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    const client = new RpcEndpoint(sender.libp2p, { protocol: RECORDS_PROTOCOL, handler: async () => ({}), log: quiet })
    await client.start()
    const task = (submitter: string, input: string): ReturnType<typeof makeTask> => makeTask({ capability: 'echo', input, submitter, maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    // a's task, sent by someone else
    const notTheirs = newRecord(task(a.peerId.toString(), 'not the sender\'s'), a.tasks!.membership.choose('0'.repeat(64)))
    // the sender's own task, for a placement b is not in
    const own = task(sender.peerId.toString(), 'elsewhere')
    const elsewhere = newRecord(own, { epoch: 0, members: [a.peerId.toString(), net.nodes[2]!.peerId.toString(), sender.peerId.toString()] })
    for (const record of [notTheirs, elsewhere]) {
      const answer = await client.request(b.peerId, { op: 'handoff', record }, { schema: handoffAnswerSchema })
      expect(answer.taken).toBe(false)
    }
    await client.stop()
    expect(b.tasks!.handoff.stats).toMatchObject({ received: 2, accepted: 0, refused: 2 })
    expect(b.tasks!.executor.stats.completed).toBe(0)
    for (const record of [notTheirs, elsewhere]) {
      for (const node of net.nodes.slice(0, 3)) expect((await node.tasks!.replica.get(record.task.id)).record).toBeUndefined()
    }
  })
})

/** `b` never answers `a`'s handoffs (it answers everything else): each times out at its own timeout, or when `silenced[i]()` is called. */
function silenceHandoffs (a: AgentNode, b: AgentNode): { silenced: Array<() => void>, restore: () => void } {
  const records = a.tasks!.components.records
  const silenced: Array<() => void> = []
  a.tasks!.components.records = async (peer, req, o) => {
    if (req.op !== 'handoff' || peer.toString() !== b.peerId.toString()) return records(peer, req, o)
    return new Promise((resolve, reject) => {
      const fail = (): void => { reject(new Error('no answer in time')) }
      const timer = setTimeout(fail, o?.timeoutMs)
      silenced.push(() => { clearTimeout(timer); fail() })
    })
  }
  return { silenced, restore: () => { a.tasks!.components.records = records } }
}

/** A new record, submitted by `a`, that `a` would hand to `b` first. */
function recordRankedFirst (a: AgentNode, b: AgentNode): ReturnType<typeof newRecord> {
  let i = 0
  const made = (): ReturnType<typeof makeTask> => makeTask({ capability: 'echo', input: i++, submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
  let record = newRecord(made(), a.tasks!.membership.choose('0'.repeat(64)))
  while (a.tasks!.handoff.taker(record) !== b.peerId.toString()) {
    if (i > 10_000) throw new Error('no task b ranks first for')
    record = newRecord(made(), record.placement)
  }
  return record
}
