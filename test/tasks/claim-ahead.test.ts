import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { AgentRuntime } from '../../node/runtime/runtime.js'
import { LeasedAhead } from '../../node/tasks/leased-ahead.js'
import { makeTask } from '../../protocols/task/index.js'
import { PartitionController } from '../../sim/faults.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { interceptLease } from '../helpers/intercept-lease.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { HeldLease, LeaseResponse } from '../../protocols/lease/index.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Slot } from '../../node/runtime/runtime.js'
import type { Testnet, TestnetInit } from '../../sim/testnet.js'

// pulls and sweeps stay fast: a lease that lapsed while its task waited here would be claimed elsewhere;
// a lease of 2 s, renewed every 667 ms, outlasts the stalls of a loaded machine
const LEASE_MS = 2_000
// leasing ahead is off by default (claimAheadPerSlot 0)
const TASKS = { ...FAST_TASKS, leaseMs: LEASE_MS, claimLagLimitMs: 5_000, claimAheadPerSlot: 1 }
/** for the partition: leases that lapse soon */
const SHORT_LEASES = { ...FAST_TASKS, leaseMs: 500, claimLagLimitMs: 5_000, claimAheadPerSlot: 1 }

/**
 * One slot a node, held by every run until the test opens the gate (but a run of the input 'quick');
 * each run answers which run of the mesh it was. `runs` counts the runs of each input, `ranOn` those on each node (by the index
 * its agent was made for).
 */
function turnstile (): { agent: Agent, agentOn: (node: number) => Agent, open: () => void, runs: Map<unknown, number>, ranOn: (node: number, input: unknown) => number } {
  let open!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  const runs = new Map<unknown, number>()
  const byNode = new Map<string, number>()
  let n = 0
  const agentOn = (node: number): Agent => ({
    name: 'turn',
    capabilities: ['turn'],
    concurrency: 1,
    run: async ctx => {
      runs.set(ctx.input, (runs.get(ctx.input) ?? 0) + 1)
      const key = `${node}/${JSON.stringify(ctx.input)}`
      byNode.set(key, (byNode.get(key) ?? 0) + 1)
      if (ctx.input !== 'quick') await Promise.race([opened, new Promise((resolve, reject) => { ctx.signal.addEventListener('abort', () => { reject(ctx.signal.reason) }) })])
      return { input: ctx.input, run: ++n }
    }
  })
  return { agent: agentOn(-1), agentOn, open, runs, ranOn: (node, input) => byNode.get(`${node}/${JSON.stringify(input)}`) ?? 0 }
}

/** Runs `intercept` before each acquire `nodes` handle: what it resolves with is answered instead; undefined, the acquire is handled. */
function onAcquire (nodes: AgentNode[], intercept: () => Promise<LeaseResponse | undefined>): void {
  for (const n of nodes) interceptLease(n, async req => req.op === 'acquire' ? await intercept() : undefined)
}

/** Takes the slots of `nodes` and waits until `submitter` sees them busy: no member it could hand a task to. */
async function fill (submitter: AgentNode, nodes: AgentNode[]): Promise<Slot[]> {
  const slots = nodes.map(n => n.tasks!.runtime.reserve('turn')).filter((s): s is Slot => s !== undefined)
  for (const n of nodes) n.tasks!.presence.slotsChanged()
  await waitFor(() => submitter.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'turn' }).length === 1, { what: 'the submitter to see every other slot busy', timeoutMs: 10_000 })
  return slots
}

describe('claim ahead: a submitter whose slots are all busy leases the task with its store and runs it when one frees', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  /**
   * Three nodes running `turn`; the test holds the slots of the other two, and the submitter (node 0)
   * runs `input` in its one slot, held at the gate: what it submits next finds every slot busy.
   */
  const busy = async (gate: ReturnType<typeof turnstile>, init: TestnetInit, input: unknown = 'first'): Promise<{ a: AgentNode, b: AgentNode, c: AgentNode, others: Slot[], first: { id: string } }> => {
    net = await createTestnet(3, { baseDir: await tmp(), ...init })
    await net.ready()
    const [a, b, c] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    const others = await fill(a, [b, c])
    const first = await a.tasks!.service.submit({ capability: 'turn', input })
    await waitFor(() => gate.runs.get(input) === 1, { what: 'the first task running on the submitter' })
    return { a, b, c, others, first }
  }

  it('one acquire per member carrying the record, no put and no offer; the task runs here once, when the slot frees', async () => {
    const gate = turnstile()
    // a lease of 6 s: the waiting task keeps its lease for 2 s (its first renewal), room for a loaded machine's stalls below
    const { a, b, c, others, first } = await busy(gate, { tasks: { ...TASKS, leaseMs: 6_000, agents: [gate.agent] } })
    const second = await a.tasks!.service.submit({ capability: 'turn', input: 'second' })
    expect(a.tasks!.claimer.stats.claimedAhead).toBe(1)
    // the other members may claim from now on: had the waiting task's lease lapsed, their pulls would find it
    for (const s of others) s.release()
    for (const n of [b, c]) n.tasks!.presence.slotsChanged()
    // within the wait's bound (the lease's first renewal): still the submitter's lease on the other members
    // (the submit went on at a majority of grants: the last member's may be on its way)
    await delay(300)
    const claim = (await a.tasks!.replica.get(second.id)).record?.attempts.find(x => x.outcome === 'running')?.claimId
    expect(claim).toBeDefined()
    await waitFor(async () => (await Promise.all([b, c].map(async n => (await n.store.leases.get(second.id))?.claimId))).every(held => held === claim), { what: 'both other members to hold the submitter\'s lease', timeoutMs: 1_000 })
    expect(gate.runs.get('second')).toBeUndefined()
    gate.open()
    for (const { id } of [first, second]) expect((await a.tasks!.service.waitFor(id, 20_000)).record.final?.state).toBe('completed')
    expect(gate.runs.get('first')).toBe(1)
    expect(gate.runs.get('second')).toBe(1)
    expect(a.tasks!.offerer.stats.offered + a.tasks!.offerer.stats.announced).toBe(0)
    // every member holds the one attempt, the submitter's, and the result it certified
    const me = a.peerId.toString()
    await waitFor(async () => (await Promise.all(net!.nodes.map(async n => n.tasks!.replica.get(second.id)))).every(x => x.result !== undefined), { what: 'every member holding the result' })
    await waitFor(() => [b, c].every(n => (n.tasks!.handlerStats.served ?? {})['lease.acquire'] === 2), { what: 'each other member to serve one acquire a task' })
    for (const n of [b, c]) expect((n.tasks!.handlerStats.served ?? {})['records.put']).toBeUndefined()
    for (const node of net!.nodes) {
      const { record, result } = await node.tasks!.replica.get(second.id)
      expect(record?.attempts.map(x => [x.peer, x.outcome])).toEqual([[me, 'completed']])
      expect(result?.value).toEqual({ input: 'second', run: 2 })
    }
  })

  it('past its room (the agent\'s concurrency times claimAheadPerSlot) a submit is stored and offered as before, and every task runs once', async () => {
    const gate = turnstile()
    const { a, b, c, others, first } = await busy(gate, { tasks: { ...TASKS, agents: [gate.agent] } }, 0)
    const ids = [first.id]
    for (const i of [1, 2, 3]) ids.push((await a.tasks!.service.submit({ capability: 'turn', input: i })).id)
    expect(a.tasks!.claimer.stats.claimedAhead).toBe(1)
    expect(a.tasks!.offerer.stats.offered + a.tasks!.offerer.stats.announced).toBe(2)
    // a submit is acknowledged at a majority: the last member's put may be on its way
    await waitFor(() => [b, c].every(n => (n.tasks!.handlerStats.served ?? {})['records.put'] === 2), { what: 'each other member to serve both puts' })
    for (const s of others) s.release()
    gate.open()
    for (const id of ids) expect((await a.tasks!.service.waitFor(id, 20_000)).record.final?.state).toBe('completed')
    expect([0, 1, 2, 3].map(i => gate.runs.get(i))).toEqual([1, 1, 1, 1])
  })

  it('a node that stops gives the leases of its waiting tasks back unrun: another member runs them, no attempt burned', async () => {
    const gate = turnstile()
    const { a, b, c, others } = await busy(gate, { tasks: { ...TASKS, agents: [gate.agent] } }, 'running')
    const { id } = await a.tasks!.service.submit({ capability: 'turn', input: 'waiting' })
    expect(a.tasks!.claimer.stats.claimedAhead).toBe(1)
    for (const s of others) s.release()
    // stopped while its one slot is busy: the run is aborted, and the waiting task never gets the slot
    await a.stop()
    gate.open()
    const view = await b.tasks!.service.waitFor(id, 20_000)
    expect(view.record.final?.state).toBe('completed')
    const attempts = view.record.attempts
    expect(attempts.filter(x => x.outcome === 'completed').map(x => x.peer)).not.toContain(a.peerId.toString())
    // the submitter's lease was given back unrun (released), or never used before it stopped
    expect(attempts.filter(x => x.peer === a.peerId.toString()).map(x => x.outcome).every(o => o === 'released')).toBe(true)
    expect(gate.runs.get('waiting')).toBe(1)
  })

  it('a task canceled while it waits is let go: its slot goes to no run of it, and it ends canceled', async () => {
    const gate = turnstile()
    const { a, b, c, others, first } = await busy(gate, { tasks: { ...TASKS, agents: [gate.agent] } })
    const second = await a.tasks!.service.submit({ capability: 'turn', input: 'second' })
    expect(a.tasks!.claimer.ownRuns.waitsAhead(second.id)).toBe(true)
    expect((await a.tasks!.service.cancel(second.id)).record.final?.state).toBe('canceled')
    expect(a.tasks!.claimer.ownRuns.waitsAhead(second.id)).toBe(false)
    // the slot frees at once, long before the waiting lease's next renewal would tell it of the cancel
    gate.open()
    expect((await a.tasks!.service.waitFor(first.id, 20_000)).record.final?.state).toBe('completed')
    await waitFor(() => a.tasks!.runtime.freeSlots().turn === 1, { what: "the submitter's slot free" })
    expect(gate.runs.get('second')).toBeUndefined()
    for (const s of others) s.release()
    for (const n of net!.nodes) expect((await n.tasks!.service.waitFor(second.id, 20_000)).record.final?.state).toBe('canceled')
  })

  it('a task that waits until its lease\'s first renewal is given back unrun, and a peer whose slot freed runs it; so does one that waits longer than one run may take', async () => {
    const gate = turnstile()
    const { a, b, c, others } = await busy(gate, { tasks: { ...TASKS, leaseMs: 6_000, agents: [gate.agent] } })
    // the slot it waits for stays taken: one task waits out the lease's renewal time, one its own timeout
    const { id } = await a.tasks!.service.submit({ capability: 'turn', input: 'quick' })
    expect(a.tasks!.claimer.ownRuns.waitsAhead(id)).toBe(true)
    const t0 = Date.now()
    await waitFor(() => !a.tasks!.claimer.ownRuns.waitsAhead(id), { what: 'the wait to end', timeoutMs: 10_000 })
    // a third of the 6 s lease
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_950)
    const short = await a.tasks!.service.submit({ capability: 'turn', input: 'quick', timeoutMs: 100 })
    expect(a.tasks!.claimer.ownRuns.waitsAhead(short.id)).toBe(true)
    await waitFor(() => !a.tasks!.claimer.ownRuns.waitsAhead(short.id), { what: 'the short wait to end', timeoutMs: 1_500 })
    for (const s of others) s.release()
    for (const n of [b, c]) n.tasks!.presence.slotsChanged()
    for (const task of [id, short.id]) {
      const view = await a.tasks!.service.waitFor(task, 20_000)
      expect(view.record.final?.state).toBe('completed')
      expect(view.record.final?.peer).not.toBe(a.peerId.toString())
      expect(view.record.attempts.filter(x => x.peer === a.peerId.toString()).map(x => x.outcome)).toEqual(['released'])
    }
    expect(gate.runs.get('quick')).toBe(2)
    gate.open()
  })

  it('a lease granted while the node stops is given back before its stop returns, not left to lapse: another member runs the task, no attempt burned', async () => {
    const gate = turnstile()
    const { a, b, c, others } = await busy(gate, { tasks: { ...TASKS, agents: [gate.agent] } }, 'running')
    // the members hold their grant of the next acquire until the node has begun to stop
    let grant!: () => void
    const granted = new Promise<void>(resolve => { grant = resolve })
    let asked = 0
    onAcquire([b, c], async () => {
      asked++
      await granted
      return undefined
    })
    const submitted = a.tasks!.service.submit({ capability: 'turn', input: 'waiting' })
    await waitFor(() => asked === 2, { what: 'both members asked for the lease' })
    expect(a.tasks!.claimer.stats.claimedAhead).toBe(0)
    // its claimer stops at once (before the first await of a.stop()); the grants come once the rest
    // of its task layer would have stopped, had nothing waited for them
    const stopping = a.stop()
    setTimeout(grant, 300)
    const { id } = await submitted
    await stopping
    const me = a.peerId.toString()
    for (const n of [b, c]) {
      const { record } = await n.tasks!.replica.get(id)
      expect(record?.attempts.filter(x => x.peer === me).map(x => x.outcome)).toEqual(['released'])
    }
    for (const s of others) s.release()
    for (const n of [b, c]) n.tasks!.presence.slotsChanged()
    gate.open()
    const view = await b.tasks!.service.waitFor(id, 20_000)
    expect(view.record.final?.state).toBe('completed')
    expect(view.record.final?.peer).not.toBe(me)
    expect(gate.runs.get('waiting')).toBe(1)
  })

  it('a lease ahead that its placement refuses gives its place back: the task is stored and offered as before, and the next submit leases ahead again', async () => {
    const gate = turnstile()
    const { a, b, c, others, first } = await busy(gate, { tasks: { ...TASKS, agents: [gate.agent] } })
    let refusing = true
    onAcquire([b, c], async () => refusing ? { status: 'ERROR', reason: 'refused by the test' } : undefined)
    const refused = await a.tasks!.service.submit({ capability: 'turn', input: 'refused' })
    expect(a.tasks!.claimer.stats.claimedAhead).toBe(0)
    expect(a.tasks!.claimer.ownRuns.waitsAhead(refused.id)).toBe(false)
    // a submit is acknowledged at a majority: the last member's put may be on its way
    await waitFor(() => [b, c].every(n => (n.tasks!.handlerStats.served ?? {})['records.put'] === 1), { what: 'each other member to serve the put' })
    refusing = false
    // the one place (concurrency 1 times claimAheadPerSlot 1) is free again
    const second = await a.tasks!.service.submit({ capability: 'turn', input: 'second' })
    expect(a.tasks!.claimer.stats.claimedAhead).toBe(1)
    expect(a.tasks!.claimer.ownRuns.waitsAhead(second.id)).toBe(true)
    gate.open()
    for (const s of others) s.release()
    for (const n of [b, c]) n.tasks!.presence.slotsChanged()
    for (const { id } of [first, refused, second]) expect((await a.tasks!.service.waitFor(id, 20_000)).record.final?.state).toBe('completed')
    expect(['first', 'refused', 'second'].map(i => gate.runs.get(i))).toEqual([1, 1, 1])
  })

  it('in a mesh larger than the placement, no lease ahead while a peer outside the placement shows a free slot (stored and offered, the task would go there); once it is busy too, the member leases ahead', async () => {
    const gate = turnstile()
    net = await createTestnet(4, { baseDir: await tmp(), tasks: { ...TASKS, agents: [gate.agent] } })
    await net.ready()
    const [a, b, c, d] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!, net.nodes[3]!]
    // every slot but the non-member's is taken
    const held = [a, b, c].map(n => n.tasks!.runtime.reserve('turn')!)
    for (const n of [a, b, c]) n.tasks!.presence.slotsChanged()
    const free = (n: AgentNode): boolean => a.tasks!.claimer.order({ id: '0'.repeat(64), capability: 'turn' }).includes(n.peerId.toString())
    await waitFor(() => !free(b) && !free(c) && free(d), { what: 'the submitter to see only the non-member with a free slot' })
    const me = a.peerId.toString()
    const task = makeTask({ capability: 'turn', input: 'ahead?', submitter: me, maxAttempts: 3, timeoutMs: 60_000, deadline: Date.now() + 60_000 })
    const placement = { epoch: 0, members: [me, b.peerId.toString(), c.peerId.toString()] }
    expect(a.tasks!.claimer.ownRuns.reserveAhead(task, placement)).toBeUndefined()
    // once that peer is busy too, the member leases ahead
    held.push(d.tasks!.runtime.reserve('turn')!)
    d.tasks!.presence.slotsChanged()
    await waitFor(() => !free(d), { what: 'the submitter to see the non-member busy' })
    const ticket = a.tasks!.claimer.ownRuns.reserveAhead(task, placement)
    expect(ticket).toBeDefined()
    ticket?.cancel()
    for (const s of held) s.release()
  })

  it('a node cut off from its placement for longer than the lease loses its waiting task to the majority, which runs it; one result, on every store', async () => {
    const gate = turnstile()
    const partition = new PartitionController()
    const { a, b, c, others, first } = await busy(gate, { perNode: i => ({ tasks: { ...SHORT_LEASES, agents: [gate.agentOn(i)] }, connectionGater: partition.gater(() => net?.nodes[i]?.peerId.toString()) }) })
    const second = await a.tasks!.service.submit({ capability: 'turn', input: 'second' })
    expect(a.tasks!.claimer.stats.claimedAhead).toBe(1)
    await partition.split([[a], [b, c]])
    for (const s of others) s.release()
    for (const n of [b, c]) n.tasks!.presence.slotsChanged()
    // its leases lapse; the waiting task may have taken the slot its aborted run freed a moment before
    // its own lease lapsed too (as any holder may start just before it is cut off): it is aborted as well
    await waitFor(() => gate.ranOn(1, 'second') + gate.ranOn(2, 'second') === 1, { what: 'the majority side running the waiting task', timeoutMs: 10_000 })
    await waitFor(() => a.tasks!.executor.stats.leaseLost >= 1 + gate.ranOn(0, 'second'), { what: "the cut-off node's runs aborted on their lost leases", timeoutMs: 10_000 })
    gate.open()
    partition.heal()
    for (const { id } of [first, second]) expect((await b.tasks!.service.waitFor(id, 20_000)).record.final?.state).toBe('completed')
    const me = a.peerId.toString()
    await waitFor(async () => (await Promise.all(net!.nodes.map(async n => n.tasks!.replica.get(second.id)))).every(x => x.result !== undefined), { what: 'every store holding the result', timeoutMs: 20_000 })
    const copies = await Promise.all(net!.nodes.map(async n => n.tasks!.replica.get(second.id)))
    const results = copies.map(x => JSON.stringify(x.result?.value))
    expect(new Set(results).size).toBe(1)
    for (const { record } of copies) {
      expect(record?.final?.peer).not.toBe(me)
      expect(record?.attempts.filter(x => x.outcome === 'completed').length).toBe(1)
      expect(record?.attempts.filter(x => x.peer === me).every(x => x.outcome !== 'completed')).toBe(true)
    }
    expect(a.tasks!.executor.stats.duplicateExecutions).toBe(0)
  })
})

describe('LeasedAhead: the queue of tasks leased before a slot', () => {
  const agent: Agent = { name: 'one', capabilities: ['one'], concurrency: 1, run: async () => null }
  const leaseWith = (controller: AbortController, taskId: string): HeldLease => ({ signal: controller.signal, taskId }) as unknown as HeldLease

  it('holds at most the agent\'s concurrency times perSlot, gives a freed slot to the oldest, and lets go of a task whose lease ends first without taking a slot', async () => {
    const runtime = new AgentRuntime([agent])
    const busy = runtime.reserve('one')!
    const ahead = new LeasedAhead(runtime, 2)
    const [t1, t2] = [ahead.reserve('one')!, ahead.reserve('one')!]
    expect(ahead.reserve('one')).toBeUndefined()
    expect(ahead.reserve('not offered')).toBeUndefined()
    const [lost, kept] = [new AbortController(), new AbortController()]
    const first = t1.wait(leaseWith(lost, 'a'))
    const second = t2.wait(leaseWith(kept, 'b'))
    expect(ahead.has('a') && ahead.has('b')).toBe(true)
    lost.abort()
    expect(await first).toBeUndefined()
    // its place is free again, and it takes no slot
    expect(ahead.reserve('one')).toBeDefined()
    busy.release()
    ahead.drain()
    const slot = await second
    expect(slot?.agent).toBe(agent)
    expect(runtime.freeSlots().one).toBe(0)
    expect(ahead.size).toBe(0)
  })

  it('lets every waiting task go, slotless, when the node stops', async () => {
    const runtime = new AgentRuntime([agent])
    runtime.reserve('one')
    const ahead = new LeasedAhead(runtime, 1)
    const waiting = ahead.reserve('one')!.wait(leaseWith(new AbortController(), 'a'))
    ahead.clear()
    expect(await waiting).toBeUndefined()
    expect(ahead.size).toBe(0)
  })
})
