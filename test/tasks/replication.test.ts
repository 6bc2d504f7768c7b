import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { PartitionController } from '../../sim/faults.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { abortableGate, gatedAgent } from '../helpers/gated.js'
import { useTmpDirs } from '../helpers/tmp.js'
import { canonicalJson, resultHash } from '../../protocols/task/index.js'
import { RECORD_HASHING } from '../../protocols/replica/digest.js'
import { statementBytes } from '../../protocols/task/certificate.js'
import { verifySignature } from '../../protocols/task/vote-batch.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { TaskRecord } from '../../protocols/task/index.js'
import type { Testnet } from '../../sim/testnet.js'

// about replication, not lease timing: a 5 s lease, so a busy machine does not run tasks out of attempts
const TASKS = { ...FAST_TASKS, leaseMs: 5_000, antiEntropyIntervalMs: 300, agents: [echoAgent] }

async function submitAll (node: AgentNode, n: number, tag: string): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) ids.push((await node.tasks!.service.submit({ capability: 'echo', input: { tag, i } })).id)
  return ids
}

/** Every record is held, with equal content, by every live member of its pinned placement. */
async function placed (net: Testnet, ids: string[]): Promise<boolean> {
  for (const id of ids) {
    const copies = await Promise.all(net.nodes.filter(n => n.libp2p.status === 'started').map(async n => (await n.tasks!.replica.get(id)).record))
    const record = copies.find(r => r !== undefined)
    if (record === undefined) return false
    const members = record.placement.members
    const holders = net.nodes.filter(n => n.libp2p.status === 'started' && members.includes(n.peerId.toString()))
    const hashes = new Set(holders.map(n => n.tasks!.replica.hashes.get(id)))
    if (hashes.has(undefined) || hashes.size !== 1) return false
  }
  return true
}

describe('replicated records', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('keeps every result readable after two of five nodes are lost', async () => {
    net = await createTestnet(5, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const ids = await submitAll(net.nodes[0]!, 20, 'loss')
    for (const id of ids) expect((await net.nodes[0]!.tasks!.service.waitFor(id, 60_000)).record.final?.state).toBe('completed')
    // acknowledged once a majority stored the certificate; the loss of two of five nodes may take two
    // members of a placement, so the test waits for the third copy (a guarantee of R = 3 needs 2 alive)
    await waitFor(async () => {
      for (const id of ids) {
        const members = (await net!.nodes[0]!.tasks!.service.get(id)).record.placement.members
        for (const m of members) {
          const node = net!.nodes.find(n => n.peerId.toString() === m)!
          if ((await node.tasks!.replica.get(id)).result === undefined) return false
        }
      }
      return true
    }, { what: 'every member to hold every certified result' })
    await net.nodes[3]!.stop()
    await net.nodes[4]!.stop()
    for (const survivor of net.nodes.slice(0, 3)) {
      for (const [i, id] of ids.entries()) {
        const view = await waitFor(async () => {
          const v = await survivor.tasks!.service.find(id)
          return v?.result !== undefined ? v : undefined
        }, { what: `result ${i} on a survivor`, timeoutMs: 10_000 })
        expect(view.result?.value).toEqual({ tag: 'loss', i })
      }
    }
  })

  it('keeps placements pinned when nodes join, and moves a task off a member gone past placementMoveAfterMs', async () => {
    const tasks = { ...TASKS, placementMoveAfterMs: 1_500, membershipWindowMs: 60_000 }
    net = await createTestnet(3, { baseDir: await tmp(), tasks })
    await net.ready()
    // nobody offers this capability: the tasks stay unfinished, which is what a move is for
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push((await net.nodes[0]!.tasks!.service.submit({ capability: 'nobody.runs', input: i })).id)
    const before = new Map(await Promise.all(ids.map(async id => [id, (await net!.nodes[0]!.tasks!.service.get(id)).record.placement] as const)))
    await net.addNode({ tasks })
    await net.addNode({ tasks })
    await net.ready()
    for (const id of ids) expect((await net.nodes[0]!.tasks!.service.get(id)).record.placement).toEqual(before.get(id))
    // a member of every placement leaves for good
    const gone = net.nodes[2]!
    await gone.stop()
    const survivor = net.nodes[0]!
    await waitFor(async () => {
      for (const id of ids) {
        const p = (await survivor.tasks!.service.get(id)).record.placement
        if (p.epoch !== 1 || p.members.includes(gone.peerId.toString()) || p.members.length !== 3) return false
      }
      return true
    }, { what: 'every task moved to epoch 1 without the lost member', timeoutMs: 30_000 })
    // the new placement serves majority operations: a cancel is certified at epoch 1
    const view = await survivor.tasks!.service.cancel(ids[0]!)
    expect(view.record.final?.state).toBe('canceled')
    expect(view.record.final?.cert.epoch).toBe(1)
    expect(view.record.previous?.[0]).toEqual(before.get(ids[0]!))

    // the member away for the whole move comes back with its epoch-0 copies. It kept them for good:
    // reads through it said pending at epoch 0, a cancel through it met WRONG_EPOCH and then said the
    // task was canceled when it was not, and the cancel made elsewhere never reached its reads
    // its own mover off: it would seal and take the move too, were its peers not yet live to it
    const back = await net.restartNode(2, { tasks: { ...tasks, placementMoveAfterMs: 600_000 } })
    await net.ready()
    expect((await back.tasks!.replica.get(ids[1]!)).record?.placement.epoch).toBe(0)
    expect((await back.tasks!.service.get(ids[1]!)).record.placement.epoch).toBe(1)
    expect((await back.tasks!.replica.get(ids[1]!)).record?.placement.epoch).toBe(1)
    expect(back.tasks!.replica.stats.missedMoves).toBe(1)
    const there = await back.tasks!.service.cancel(ids[2]!)
    expect(there.record.final?.state).toBe('canceled')
    expect(there.record.final?.cert.epoch).toBe(1)
    const elsewhere = await back.tasks!.service.get(ids[0]!)
    expect(elsewhere.record.final?.state).toBe('canceled')
    expect(elsewhere.record.final?.cert.epoch).toBe(1)
  })

  it('leaves a task in place while a live peer runs it: a member gone past placementMoveAfterMs neither ends the run nor spends its attempt', async () => {
    const gate = abortableGate()
    let runs = 0
    const held: Agent = { name: 'held', capabilities: ['held'], concurrency: 4, run: async ctx => { runs++; await gate.wait(ctx.signal); return 'done' } }
    const tasks = { ...TASKS, placementMoveAfterMs: 1_500, membershipWindowMs: 60_000, agents: [held] }
    net = await createTestnet(4, { baseDir: await tmp(), tasks })
    await net.ready()
    const [a] = net.nodes as [AgentNode]
    const s = a.tasks!.service
    // one attempt: a move under the run spent it, and the task died
    const { id } = await s.submit({ capability: 'held', input: 'long', maxAttempts: 1 })
    const running = await waitFor(async () => (await s.get(id)).record.attempts.find(x => x.outcome === 'running'), { what: 'the task running' })
    const { placement } = (await s.get(id)).record
    const lost = net.nodes.find(n => n !== a && placement.members.includes(n.peerId.toString()) && n.peerId.toString() !== running.peer)!
    await lost.stop()
    const others = net.nodes.filter(n => n !== lost && placement.members.includes(n.peerId.toString()))
    // past the threshold twice over, by every member left: each check of the movers has seen it gone
    await waitFor(() => others.every(n => n.tasks!.membership.silentFor(lost.peerId.toString()) > 3_000), { what: 'the member gone past twice the move threshold', timeoutMs: 20_000 })
    gate.open()
    expect((await s.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    // every member left holds the one attempt, completed at epoch 0 (a cache copy's attempts may lag its outcome)
    const copies = async (): Promise<Array<TaskRecord | undefined>> => await Promise.all(others.map(async n => (await n.tasks!.replica.get(id)).record))
    await waitFor(async () => (await copies()).every(r => r?.final !== undefined && r.attempts.every(x => x.outcome !== 'running')), { what: 'every member left to hold the outcome' })
    for (const r of await copies()) {
      expect(r?.final?.state).toBe('completed')
      expect(r?.attempts.map(x => x.outcome)).toEqual(['completed'])
      expect(r?.placement.epoch).toBe(0)
    }
    expect(runs).toBe(1)
    expect(others.reduce((n, node) => n + node.tasks!.mover.stats.waitedForRuns, 0)).toBeGreaterThan(0)
  })

  it('blocks a task whose placement lost a majority, and moves it only when an operator forces it', async () => {
    const tasks = { ...TASKS, placementMoveAfterMs: 1_000, membershipWindowMs: 60_000 }
    net = await createTestnet(5, { baseDir: await tmp(), tasks })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    // a task whose placement has node 0 and two others, found by trying
    let id: string | undefined
    let members: string[] = []
    for (let i = 0; i < 50 && id === undefined; i++) {
      const t = (await s.submit({ capability: 'nobody.runs', input: i })).id
      members = (await s.get(t)).record.placement.members
      if (members.includes(net.nodes[0]!.peerId.toString())) id = t
    }
    expect(id).toBeDefined()
    const lost = net.nodes.filter(n => members.includes(n.peerId.toString()) && n !== net!.nodes[0])
    for (const n of lost) await n.stop()
    await waitFor(async () => (await s.list({ state: 'blocked' })).some(r => r.task.id === id), { what: 'the task listed as blocked', timeoutMs: 15_000 })
    // never moved on its own: a majority of its placement may be alive on the other side of a partition
    expect((await s.get(id!)).record.placement.epoch).toBe(0)
    const forced = await s.forcePlacement(id!)
    expect(forced.placement.epoch).toBe(1)
    expect(forced.placement.members.some(m => lost.some(n => n.peerId.toString() === m))).toBe(false)
    expect(forced.warning).toMatch(/second result/)
    expect(net.nodes[0]!.tasks!.mover.stats.forced).toBe(1)
    const canceled = await s.cancel(id!)
    expect(canceled.record.final?.cert.epoch).toBe(1)
  })

  it('blocks a move whose votes a lost member could have certified either way, lists it, and makes it once that member answers again', async () => {
    const tasks = { ...TASKS, placementMoveAfterMs: 1_000, membershipWindowMs: 60_000 }
    net = await createTestnet(4, { baseDir: await tmp(), tasks })
    await net.ready()
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'nobody.runs', input: 'split' })
    const { placement } = (await net.nodes[0]!.tasks!.service.get(id)).record
    // the member lost is the first of the placement: back, it is the first live member again, but
    // its copy holds no seal; the two others, sealed for the move, must finish it
    const [c, a, b] = placement.members.map(m => net!.nodes.findIndex(n => n.peerId.toString() === m)) as [number, number, number]
    // two holders, each of which got one member's vote for its own result before it died: the
    // state a holder killed mid-vote and restarted, then another holder, leave behind
    const holder = net.nodes.find(n => !placement.members.includes(n.peerId.toString()))!.peerId.toString()
    for (const [i, claimId, result] of [[a, 'holder-1', 'one'], [b, 'holder-2', 'two']] as const) {
      const replica = net.nodes[i]!.tasks!.replica
      const grant = await replica.handleLease(holder, { op: 'acquire', id, epoch: 0, claimId, durationMs: 60_000 })
      const vote = await replica.handleLease(holder, { op: 'vote', id, epoch: 0, claimId, term: grant.term!, value: { state: 'completed', claimId, resultHash: resultHash(result) }, result, size: 5 })
      expect(vote.vote?.value.claimId).toBe(claimId)
    }
    // the third member is lost: it may have voted either way, so no value is safe to keep
    await net.nodes[c]!.stop()
    const mover = net.nodes[a]!.tasks!
    await waitFor(async () => (await mover.service.list({ state: 'blocked' })).some(r => r.task.id === id), { what: 'the task listed as blocked', timeoutMs: 15_000 })
    expect(mover.mover.blockedReason((await mover.service.get(id)).record)).toMatch(/votes split over 2 outcomes/)
    expect((await mover.replica.get(id)).record?.placement.epoch).toBe(0)
    // back with no vote: its seal shows that neither value was certified, so the move settles on one
    await net.restartNode(c)
    // the restart, the move's seal and install on each member and the decision, each a round over
    // the members: 30 s fell short beside a heavy benchmark on two cores
    const settled = await waitFor(async () => {
      const v = await net!.nodes[a]!.tasks!.service.find(id)
      // final with its result: a member that kept the other result fetches the certified one
      return v?.record.final !== undefined && v.result !== undefined ? v : undefined
    }, { what: 'the move made and the task decided', timeoutMs: 60_000 })
    expect(settled.record.placement.epoch).toBe(1)
    expect(settled.record.final?.state).toBe('completed')
    expect(['one', 'two']).toContain(settled.result?.value)
    expect(await net.nodes[a]!.tasks!.service.list({ state: 'blocked' })).toEqual([])
    // both sealed members end final on the decided result, the one that kept the other result too
    await waitFor(async () => {
      const copies = await Promise.all([a, b].map(async i => net!.nodes[i]!.tasks!.replica.get(id)))
      return copies.every(x => x.record?.final?.state === 'completed' && x.result?.value === settled.result?.value)
    }, { what: 'both old members final on one result' })
    // the lost member, back and sealed by the move but left out of it, takes the new placement
    // (else it would retry the move at every check)
    const lost = net.nodes[c]!.tasks!
    await waitFor(async () => (await lost.replica.sealedFor(id)) === undefined && (await lost.replica.get(id)).record?.placement.epoch === 1, { what: 'the lost member to take the new placement' })
    // one result on every node that holds a copy
    const results = await Promise.all(net.nodes.map(async n => (await n.tasks!.replica.get(id)).result?.value))
    expect(new Set(results.filter(r => r !== undefined))).toEqual(new Set([settled.result?.value]))
  })

  it('moves a task whose members all voted and split three ways to the next epoch, which settles on one result everywhere', async () => {
    net = await createTestnet(4, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'nobody.runs', input: 'three-way' })
    const { placement } = (await net.nodes[0]!.tasks!.service.get(id)).record
    const holder = net.nodes.find(n => !placement.members.includes(n.peerId.toString()))!.peerId.toString()
    // the state partitions left behind under load: two holders' results and a failure, one member each
    const members = placement.members.map(m => net!.nodes.find(n => n.peerId.toString() === m)!)
    for (const [i, claimId, result] of [[0, 'holder-1', 'one'], [1, 'holder-2', 'two'], [2, 'holder-3', undefined]] as const) {
      const replica = members[i]!.tasks!.replica
      const grant = await replica.handleLease(holder, { op: 'acquire', id, epoch: 0, claimId, durationMs: 60_000 })
      const vote = result === undefined
        ? await replica.handleLease(holder, { op: 'fail', id, epoch: 0, claimId, term: grant.term!, error: 'gave up', unrecoverable: true })
        : await replica.handleLease(holder, { op: 'vote', id, epoch: 0, claimId, term: grant.term!, value: { state: 'completed', claimId, resultHash: resultHash(result) }, result, size: 5 })
      expect(vote.vote?.value.state).toBe(result === undefined ? 'dead' : 'completed')
    }
    // no value can reach a majority of epoch 0: recovery moves it, every member live, and the move
    // keeps a completed result (the largest groups tie; a result is kept rather than the work lost)
    const settled = await waitFor(async () => {
      const v = await net!.nodes[0]!.tasks!.service.find(id)
      return v?.record.final !== undefined && v.result !== undefined ? v : undefined
    }, { what: 'the deadlocked task moved and decided', timeoutMs: 20_000 })
    expect(settled.record.placement.epoch).toBe(1)
    expect(settled.record.placement.members).toEqual(placement.members)
    expect(settled.record.final?.state).toBe('completed')
    expect(['one', 'two']).toContain(settled.result?.value)
    // made by recovery's deadlock move, whose node tells the outcome as recovery tells a decision
    // (its own copy is final by then: no sweep of it decides the task again)
    await waitFor(() => members.some(m => m.tasks!.sweeper.stats.deadlockMoves >= 1 && m.tasks!.sweeper.stats.decided >= 1), { what: 'the mover to count its move and tell the outcome' })
    // every member ends final on the same certified result, the two that voted otherwise included
    await waitFor(async () => {
      const copies = await Promise.all(members.map(async m => m.tasks!.replica.get(id)))
      return copies.every(x => x.record?.final?.state === 'completed' && x.record.final.cert.epoch === 1 && x.result?.value === settled.result?.value)
    }, { what: 'every member final on one result in epoch 1' })
    expect(await net.nodes[0]!.tasks!.service.list({ state: 'blocked' })).toEqual([])
  })

  it('converges after a partition heals', async () => {
    const partition = new PartitionController()
    net = await createTestnet(4, {
      baseDir: await tmp(),
      tasks: TASKS,
      perNode: i => ({ connectionGater: partition.gater(() => net?.nodes[i]?.peerId.toString()) })
    })
    await net.ready()
    const [a, b, c, d] = net.nodes as [AgentNode, AgentNode, AgentNode, AgentNode]
    await partition.split([[a, b], [c, d]])
    await waitFor(() => a.tasks!.presence.live().length === 2 && c.tasks!.presence.live().length === 2, { what: 'each side to see only itself', timeoutMs: 10_000 })
    // a side holds a majority of a task's placement, or refuses the submit: never both sides
    const submitSide = async (node: AgentNode, tag: string): Promise<{ acked: string[], refused: number }> => {
      const acked: string[] = []
      let refused = 0
      for (let i = 0; i < 10; i++) {
        try {
          acked.push((await node.tasks!.service.submit({ capability: 'echo', input: { tag, i } })).id)
        } catch (err: any) {
          expect(err.name).toBe('QuorumUnavailableError')
          refused++
        }
      }
      return { acked, refused }
    }
    const leftSide = await submitSide(a, 'left')
    const rightSide = await submitSide(c, 'right')
    const left = leftSide.acked
    const right = rightSide.acked
    // a placement of 3 among 4 peers puts 2 on one side: some submits succeed, and the others fail
    expect(left.length + right.length).toBeGreaterThan(0)
    expect(leftSide.refused + rightSide.refused).toBeGreaterThan(0)
    // read from the other side, a task acknowledged on one side is not "no task" (404, which a client
    // may take as leave to submit it again): the reader cannot reach a majority of its placement
    for (const [id, reader] of [...left.map(id => [id, c] as const), ...right.map(id => [id, a] as const)]) {
      await expect(reader.tasks!.service.get(id), `${id} read across the partition`).rejects.toMatchObject({ name: 'QuorumUnavailableError' })
    }
    for (const id of left) await a.tasks!.service.waitFor(id, 60_000)
    for (const id of right) await c.tasks!.service.waitFor(id, 60_000)
    partition.heal()
    // the joiners reconnect through their bootstrap peer; presence and anti-entropy do the rest
    await net.ready(20_000)
    await waitFor(async () => placed(net!, [...left, ...right]), {
      what: () => `all records on their replica sets; ${JSON.stringify(net!.nodes.map(n => ({ live: n.tasks!.presence.live().length, records: n.tasks!.replica.hashes.size, ae: n.tasks!.antiEntropy.stats })))}`,
      timeoutMs: 20_000
    })
    for (const node of net.nodes) {
      for (const id of [...left, ...right]) {
        const view = await node.tasks!.service.find(id)
        expect(view?.record.final?.state).toBe('completed')
      }
    }
    // a task no member holds, asked of a placement that answers, is unknown
    await expect(a.tasks!.service.get('0'.repeat(64))).rejects.toMatchObject({ name: 'TaskNotFoundError' })
  })

  it('anti-entropy gives a record in flux to a member that lacks it, compares its content only once it settles', async () => {
    const { agent: gated, open } = gatedAgent('ran')
    // rounds only when the test runs them; records stay in flux for a minute
    const tasks = { ...TASKS, leaseMs: 30_000, antiEntropyIntervalMs: 3_600_000, antiEntropyMinAgeMs: 60_000 }
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...tasks, agents: i === 2 ? [] : [gated] } }) })
    await net.ready()
    // the third member misses two submits and the claims that follow
    await net.nodes[2]!.stop()
    const s = net.nodes[0]!.tasks!.service
    const stale = (await s.submit({ capability: 'gated', input: 'stale copy' })).id
    const missed = (await s.submit({ capability: 'gated', input: 'missed' })).id
    const running = (): string[] => [...net!.nodes[0]!.tasks!.executor.running(), ...net!.nodes[1]!.tasks!.executor.running()]
    await waitFor(() => running().includes(stale) && running().includes(missed), { what: 'both tasks running' })
    const again = await net.restartNode(2, { tasks })
    // the third member holds the first as submitted: the same task, an older state
    const current = (await s.get(stale)).record
    expect(current.attempts.length).toBe(1)
    await again.tasks!.replica.put({ ...current, attempts: [], generation: 0, updatedAt: current.task.createdAt })
    const hashes = (id: string): Array<string | undefined> => net!.nodes.map(n => n.tasks!.replica.hashes.get(id))
    expect(hashes(stale)[2]).not.toBe(hashes(stale)[0])
    const round = async (): Promise<void> => { for (const n of net!.nodes) await n.tasks!.antiEntropy.runRound() }
    const pushed = (): number => net!.nodes.reduce((sum, n) => sum + n.tasks!.antiEntropy.stats.recordsPushed, 0)
    await round()
    await round()
    // the one it lacked it now has; the one it holds in another state is left to the task
    expect(again.tasks!.replica.hashes.has(missed)).toBe(true)
    expect(pushed()).toBe(1)
    expect(hashes(stale)[2]).not.toBe(hashes(stale)[0])
    // settled (here: the age limit lowered on every node, as time would), its content is repaired too
    for (const n of net.nodes) (n.tasks!.options as { antiEntropyMinAgeMs: number }).antiEntropyMinAgeMs = 0
    // a round whose exchange timed out on a loaded machine repairs nothing: rounds until one lands
    await waitFor(async () => { await round(); return hashes(stale)[2] === hashes(stale)[0] }, { what: 'the settled copy repaired by a round' })
    expect(hashes(stale)[2]).toBe(hashes(stale)[0])
    expect(pushed()).toBeGreaterThanOrEqual(2)
    open()
  })

  it('anti-entropy pushes no finished copy that differs only in its member\'s clock and the certificate\'s signatures', async () => {
    // rounds only when the test runs them, and every record compared at once
    const tasks = { ...TASKS, antiEntropyIntervalMs: 3_600_000, antiEntropyMinAgeMs: 1 }
    net = await createTestnet(3, { baseDir: await tmp(), tasks })
    await net.ready()
    const ids = await submitAll(net.nodes[0]!, 6, 'settled')
    const copies = async (id: string): Promise<Array<TaskRecord | undefined>> => Promise.all(net!.nodes.map(async n => (await n.tasks!.replica.get(id)).record))
    // a final made of votes already on disk is served before its own write lands, and the digest's
    // hashes follow the write: settled means final and indexed everywhere (a busy machine's disk lags)
    const indexed = (id: string): boolean => new Set(net!.nodes.map(n => n.tasks!.replica.hashes.get(id))).size === 1
    await waitFor(async () => (await Promise.all(ids.map(copies))).flat().every(r => r?.final?.state === 'completed') && ids.every(indexed), { what: 'every copy final, and indexed as final' })
    // each member stamped its own times, and members that committed with their vote hold the votes they had
    const raw = await Promise.all(ids.map(async id => new Set((await copies(id)).map(r => canonicalJson(r)))))
    expect(raw.every(variants => variants.size > 1)).toBe(true)
    const pushed = (): number => net!.nodes.reduce((sum, n) => sum + n.tasks!.antiEntropy.stats.recordsPushed, 0)
    for (const n of net.nodes) await n.tasks!.antiEntropy.runRound()
    expect(pushed()).toBe(0)
    for (const id of ids) expect(new Set(net.nodes.map(n => n.tasks!.replica.hashes.get(id))).size).toBe(1)
    // a peer from before this hashing sends no version: its hashes could never agree, so nothing differs
    const [a, b] = [net.nodes[0]!, net.nodes[1]!]
    const digest = async (hashing?: number): Promise<unknown> => a.tasks!.components.records(b.peerId, { op: 'digest', buckets: { 0: 'f'.repeat(16) }, ...(hashing === undefined ? {} : { hashing }) })
    expect(await digest()).toEqual({ status: 'OK', differ: [] })
    // nor does one of an older hashing (version 2 hashed the task's whole content)
    expect(await digest(RECORD_HASHING - 1)).toEqual({ status: 'OK', differ: [] })
    expect(await digest(RECORD_HASHING)).toMatchObject({ status: 'OK', differ: expect.arrayContaining(['0']) })
  })

  it('a node restarted from its data dir has its records and lease terms', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const ids = await submitAll(net.nodes[0]!, 10, 'restart')
    for (const id of ids) await net.nodes[0]!.tasks!.service.waitFor(id, 10_000)
    const node = net.nodes[1]!
    // the submitter's wait ends at a majority: this member's copy of a record or a result may still be on its way
    await waitFor(async () => {
      const { tasks, results } = await node.store.figures()
      return tasks === ids.length && results === ids.length
    }, { what: 'every record and result on the member restarted below' })
    const before = await node.store.figures()
    const leases = await Promise.all(ids.map(async id => (await node.store.leases.get(id))?.maxTerm))
    await node.stop()
    const again = await net.restartNode(1, { tasks: TASKS })
    expect(await again.store.figures()).toMatchObject({ tasks: before.tasks, results: before.results })
    expect(await Promise.all(ids.map(async id => (await again.store.leases.get(id))?.maxTerm))).toEqual(leases)
    expect(again.tasks!.replica.hashes.size).toBe(before.tasks)
  })

  it('never sends a result over the inline limit in a notice: other nodes fetch it from the replicas', async () => {
    // the submitter runs nothing, so the result is another node's to tell it
    net = await createTestnet(4, { baseDir: await tmp(), perNode: i => ({ tasks: { ...TASKS, maxInlineResultBytes: 1_024, agents: i === 0 ? [] : [echoAgent] } }) })
    await net.ready()
    const notices: unknown[] = []
    // gossiped or sent straight to the submitter, every notice a node takes in goes through applyNotice
    for (const node of net.nodes) {
      const service = node.tasks!.service
      const apply = service.applyNotice.bind(service)
      service.applyNotice = n => { if (n.event === 'completed') notices.push(n); apply(n) }
    }
    const big = 'x'.repeat(20_000)
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'echo', input: big })
    const view = await net.nodes[3]!.tasks!.service.waitFor(id, 10_000)
    expect(view.result?.value).toBe(big)
    await waitFor(() => notices.length > 0, { what: 'the completion notice' })
    for (const notice of notices) {
      expect(notice).not.toHaveProperty('result')
      expect(notice).toMatchObject({ resultSize: 20_002 })
    }
  })

  it('forgets completed tasks after the retention period, and does not take them back', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), tasks: { ...TASKS, retentionMs: 300 } })
    await net.ready()
    const [id] = await submitAll(net.nodes[0]!, 1, 'retention')
    // not a wait on the task: with a 300 ms retention it may already be forgotten when the wait reads it
    await waitFor(() => net!.nodes.some(n => n.tasks!.executor.stats.completed > 0), { what: 'the task to complete' })
    await waitFor(async () => (await Promise.all(net!.nodes.map(async n => n.store.tasks.get(id!)))).every(r => r === undefined), { what: 'the record to expire everywhere', timeoutMs: 10_000 })
    expect(await net.nodes[1]!.store.results.get(id!)).toBeUndefined()
    // nor its entry in the creation index a listing reads
    for (const n of net.nodes) {
      for await (const [key] of n.store.created.entries()) expect(key.endsWith(id!)).toBe(false)
    }
  })

  it('certifies every task of a burst with votes signed in batches, and every vote in every member copy checks by its own signature', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...TASKS, voteSignBatchMax: 16 } })
    await net.ready()
    const nodes = net.nodes
    // submitted at once on every node: members cast many votes in one turn, which is what is batched
    const ids = await Promise.all(Array.from({ length: 90 }, async (_, i) => (await nodes[i % 3]!.tasks!.service.submit({ capability: 'echo', input: { i } })).id))
    for (const id of ids) expect((await nodes[0]!.tasks!.service.waitFor(id, 60_000)).record.final?.state).toBe('completed')
    let batched = 0
    let checked = 0
    for (const node of nodes) {
      for (const id of ids) {
        const { record } = await node.tasks!.replica.get(id)
        if (record === undefined || !record.placement.members.includes(node.peerId.toString())) continue
        const cert = record.final?.cert
        expect(cert, `a certificate for ${id} on ${node.peerId.toString()}`).toBeDefined()
        for (const vote of cert!.votes) {
          // the signature itself, not this process's memory of votes it made or checked
          const statement = statementBytes({ id, generation: cert!.generation, epoch: cert!.epoch, term: vote.term, value: cert!.value })
          expect(verifySignature(vote.peer, statement, vote.sig)).toBe(true)
          expect(verifySignature(vote.peer, statementBytes({ id, generation: cert!.generation, epoch: cert!.epoch, term: vote.term + 1, value: cert!.value }), vote.sig)).toBe(false)
          if (vote.sig.startsWith('b1.')) batched++
          checked++
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(90 * 2 * 2)
    expect(batched).toBeGreaterThan(0)
  })
})
