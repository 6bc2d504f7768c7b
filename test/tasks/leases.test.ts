import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { LEASE_PROTOCOL, majority } from '../../protocols/lease/index.js'
import { resultHash } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { createRawPeer } from '../../sim/raw-peer.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

const NOBODY = 'race.nobody-runs-this'

describe('quorum leases on real nodes', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  // about logic, not scale: 8 peers race (20 timed out on a busy 2-core machine)
  it('8 peers racing for the same tasks never hold overlapping majority leases', async () => {
    net = await createTestnet(8, { baseDir: await tmp(), connectionMonitor: false, tasks: { ...FAST_TASKS, leaseMs: 300, presenceIntervalMs: 1_000, pullIntervalMs: 60_000, sweepIntervalMs: 60_000, rpcTimeoutMs: 15_000 } })
    await net.ready(60_000)
    const tasks = await Promise.all(Array.from({ length: 5 }, async (_, i) => (await net!.nodes[i]!.tasks!.service.submit({ capability: NOBODY, input: i, maxAttempts: 100 })).id))
    // every peer asks the one pinned placement of each task, whatever its own view
    const targets = new Map(await Promise.all(tasks.map(async id => [id, { id, placement: (await net!.nodes[0]!.tasks!.service.get(id)).record.placement }] as const)))
    // warm-up: open each peer's streams to the replicas first; opening ~200 streams at once on 2 cores is the slow part
    for (const node of net.nodes) {
      for (const id of tasks) {
        const lease = await node.tasks!.leases.acquire(targets.get(id)!).catch(() => undefined)
        await lease?.release(false)
      }
    }
    // holds[id]: when each holder got its majority, and when its lease ended by its own conservative
    // clock: the release being sent, or the lease running out counted from when acquire was sent
    const holds = new Map<string, Array<{ acquired: number, end: number, peer: number }>>()
    const leaseMs = 300
    let attempts = 0
    let won = 0
    // a fixed number of claims, not a fixed time: the figure must not depend on the machine's speed
    const target = 400
    await Promise.all(net.nodes.map(async (node, peer) => {
      let round = 0
      while (attempts < target) {
        const id = tasks[(peer + round++) % tasks.length] as string
        attempts++
        const sent = Date.now()
        try {
          const lease = await node.tasks!.leases.acquire(targets.get(id)!)
          const acquired = Date.now()
          won++
          await new Promise(resolve => setTimeout(resolve, (peer * 7 + round) % 15))
          const end = Math.min(Date.now(), sent + leaseMs)
          await lease.release(false)
          holds.set(id, [...(holds.get(id) ?? []), { acquired, end, peer }])
        } catch (err: any) {
          expect(['LeaseDeniedError', 'QuorumUnavailableError', 'TaskFinishedError']).toContain(err.name)
        }
      }
    }))
    expect(attempts).toBeGreaterThanOrEqual(target)
    expect(won).toBeGreaterThan(30)
    for (const [id, intervals] of holds) {
      intervals.sort((a, b) => a.acquired - b.acquired)
      for (let i = 1; i < intervals.length; i++) {
        const prev = intervals[i - 1]!
        const cur = intervals[i]!
        expect(cur.acquired >= prev.end, `task ${id}: peer ${cur.peer} got a majority at ${cur.acquired} while peer ${prev.peer} held it until ${prev.end}`).toBe(true)
      }
    }
  }, 180_000)

  it('keeps claiming with one of three replicas down, and a restarted replica never reuses a term', async () => {
    // a lease a loaded machine's round trips cannot outlast would fail the claim for want of time,
    // which is not what this test is about (one grant came back past its lease under a busy CI run)
    const tasks = { ...FAST_TASKS, agents: [], leaseMs: 5_000 }
    net = await createTestnet(3, { baseDir: await tmp(), tasks })
    await net.ready()
    const [a, b] = net.nodes
    const { id } = await a!.tasks!.service.submit({ capability: NOBODY, input: 'x' })
    const target = { id, placement: (await a!.tasks!.service.get(id)).record.placement }
    expect(target.placement.members).toHaveLength(3)
    const first = await a!.tasks!.leases.acquire(target)
    const terms = [...first.grants.values()]
    await first.release(false)
    // the third member took the give-back (a grant of it that came after the claim was decided is
    // given back a moment later): stopped still holding it, on a loaded machine, it came back
    // holding it until it lapsed, and denied its own claim below
    await waitFor(async () => { const lease = await net!.nodes[2]!.store.leases.get(id); return lease !== undefined && lease.claimId === undefined }, { what: 'the give-back at the third member' })
    await net.nodes[2]!.stop()
    // two of three still make a majority. A give-back a loaded machine did not deliver in time (a
    // busy CI run) leaves that member's grant until the lease ends: the claim is asked again till then
    const second = await waitFor(async () => b!.tasks!.leases.acquire(target), { what: 'a lease from the two members left', timeoutMs: 15_000, intervalMs: 200 })
    expect(second.grants.size).toBe(majority(3))
    await second.release(false)
    const restarted = await net.restartNode(2, { tasks })
    await net.ready()
    const stored = await restarted.store.leases.get(id)
    expect(stored?.maxTerm).toBe(Math.max(...terms))
    const third = await restarted.tasks!.leases.acquire(target)
    // the claim resolves at a majority: the restarted member's own grant joins it a moment later,
    // or, on a machine so loaded that it came back past the lease, is given back. Either way it was
    // granted with a term above every term it granted before the restart, and its store keeps it
    await waitFor(async () => ((await restarted.store.leases.get(id))?.maxTerm ?? 0) > stored!.maxTerm, { what: 'the restarted member\'s grant, with a new term' })
    const joined = third.grants.get(restarted.peerId.toString())
    if (joined !== undefined) expect(joined).toBeGreaterThan(stored!.maxTerm)
    await third.release(false)
  })

  // the holder's vote reached one member, then the holder died for good: the member that voted is
  // not the placement's first live member, and claimants keep taking the other member's lease.
  // Before the fix nobody finished this decision: each claim got one grant of two and was released.
  it('finishes a decision a dead holder left on one member, even when that member is not the first live one', async () => {
    const tasks = { ...FAST_TASKS, agents: [], leaseMs: 2_000, presenceIntervalMs: 300 }
    net = await createTestnet(4, { baseDir: await tmp(), tasks })
    await net.ready()
    const { id } = await net.nodes[3]!.tasks!.service.submit({ capability: NOBODY, input: 'x' })
    // the first claim is tried again, on the placement as its members hold it: on a loaded machine
    // (beside a bench) a claim answered OK by all three members counted one grant (a grant counts
    // only for the placement asked about, and only while it lasts)
    const { placement, lease } = await waitFor(async () => {
      const current = (await net!.nodes[3]!.tasks!.service.find(id, { complete: true }))!.record.placement
      const holder = net!.nodes.find(n => n.peerId.toString() === current.members[0])!
      const held = await holder.tasks!.leases.acquire({ id, placement: current }).catch(() => undefined)
      return held === undefined ? undefined : { placement: current, lease: held }
    }, { what: 'a first claim on the placement', timeoutMs: 15_000 })
    const [killed, first, voter] = placement.members.map(m => net!.nodes.find(n => n.peerId.toString() === m)!)
    const claimant = net.nodes.find(n => !placement.members.includes(n.peerId.toString()))!
    const target = { id, placement }
    const result = { by: 'the killed holder', at: Date.now() }
    const value = { state: 'completed' as const, claimId: lease.claimId, resultHash: resultHash(result) }
    const voterId = voter!.peerId.toString()
    // the claim resolves at a majority: the voter's grant may join it a moment later
    await waitFor(() => lease.grants.has(voterId), { what: 'the voter\'s grant' })
    const [cast] = await killed!.tasks!.leases.ask([voterId], { op: 'vote', id, epoch: placement.epoch, claimId: lease.claimId, term: lease.grants.get(voterId)!, value, result, size: 40 })
    expect(cast!.res).toMatchObject({ status: 'OK', vote: { value } })
    await killed!.stop()
    // claimants keep asking meanwhile, as pulls and re-announcements do
    let claiming = true
    const claims = (async () => {
      while (claiming) {
        const held = await claimant!.tasks!.leases.acquire(target).catch((err: Error) => err)
        if (!(held instanceof Error)) await held.release(false)
        else expect(['LeaseDeniedError', 'QuorumUnavailableError', 'TaskFinishedError']).toContain(held.name)
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    })()
    try {
      for (const member of [first!, voter!]) {
        const local = await waitFor(async () => { const l = await member.tasks!.replica.get(id); return l.record?.final?.state === 'completed' && l }, { timeoutMs: 30_000, what: `the decision on ${member.peerId.toString().slice(-6)}` })
        expect(local.result?.value).toEqual(result)
      }
    } finally {
      claiming = false
      await claims
    }
  })

  it('sends a task nobody claims to the dead letters as unclaimed at its deadline', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), tasks: FAST_TASKS })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: NOBODY, input: 1, deadlineMs: 400 })
    const view = await s.waitFor(id, 5_000)
    expect(view.record.final).toMatchObject({ state: 'dead', reason: 'unclaimed' })
    expect(view.record.final?.cert.votes.length).toBeGreaterThanOrEqual(majority(view.record.placement.members.length))
    await waitFor(async () => (await net!.nodes[1]!.tasks!.service.deadLetters()).some(r => r.task.id === id), { what: 'the dead letter on the other node' })
  })

  it('answers garbage, unknown tasks, wrong holders and huge frames on the lease protocol with a status, and stays healthy', async () => {
    // a lease long enough for a loaded machine's round trips: a claim gives up after a third of it
    // (FAST_TASKS' 500 ms lease failed the claim of a busy CI run), and timing is not what this is about
    net = await createTestnet(2, { transport: 'tcp', baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [], leaseMs: 5_000 } })
    await net.ready()
    const node = net.nodes[0]!
    const { id } = await node.tasks!.service.submit({ capability: NOBODY, input: 'held' })
    const target = { id, placement: (await node.tasks!.service.get(id)).record.placement }
    const epoch = target.placement.epoch
    const held = await node.tasks!.leases.acquire(target)
    // the raw peer asks node 0, which must be a member for most of these answers
    const member = target.placement.members.includes(node.peerId.toString())
    const raw = await createRawPeer()
    try {
      await raw.dial(multiaddr(node.addrs()[0] as string))
      const ask = async (body: unknown): Promise<any> => {
        const stream = await raw.dialProtocol(node.peerId, LEASE_PROTOCOL)
        const lp = lpStream(stream)
        await lp.write(new TextEncoder().encode(JSON.stringify({ i: 1, b: body })))
        const answer = JSON.parse(new TextDecoder().decode((await lp.read()).subarray())).b
        await stream.close()
        return answer
      }
      expect(member).toBe(true)
      expect(await ask({ op: 'acquire', id: 'e'.repeat(64), epoch, claimId: 'x', durationMs: 500 })).toEqual({ status: 'UNKNOWN_TASK' })
      expect(await ask({ op: 'acquire', id, epoch, claimId: 'thief', durationMs: 500 })).toMatchObject({ status: 'DENIED', holder: node.peerId.toString() })
      expect(await ask({ op: 'acquire', id, epoch: epoch + 1, claimId: 'thief', durationMs: 500 })).toMatchObject({ status: 'WRONG_EPOCH' })
      expect(await ask({ op: 'renew', id, epoch, claimId: held.claimId, term: 1, durationMs: 500 })).toMatchObject({ status: 'DENIED' })
      expect(await ask({ op: 'release', id, epoch, claimId: held.claimId, term: 1, ran: false })).toMatchObject({ status: 'DENIED' })
      expect(await ask({ op: 'vote', id, epoch, claimId: held.claimId, term: 1, value: { state: 'completed', claimId: held.claimId, resultHash: 'a'.repeat(64) }, result: 'forged', size: 8 })).toEqual({ status: 'STALE_TERM' })
      expect(await ask({ op: 'journal', id, epoch, claimId: held.claimId, term: 1, key: 'k', value: 1 })).toEqual({ status: 'STALE_TERM' })
      expect(await ask({ op: 'commit', id, epoch, cert: { id, generation: 0, epoch, value: { state: 'completed', claimId: 'x' }, votes: [{ peer: node.peerId.toString(), term: 1, sig: 'AAAA' }] } })).toMatchObject({ status: 'ERROR' })
      expect(await ask({ op: 'explode' })).toMatchObject({ status: 'ERROR' })
      expect(await ask('just a string')).toMatchObject({ status: 'ERROR' })

      const before = node.tasks!.stats().rpc as any
      const garbage = await raw.dialProtocol(node.peerId, LEASE_PROTOCOL)
      garbage.send(new TextEncoder().encode('\x05hello'))
      const huge = await raw.dialProtocol(node.peerId, LEASE_PROTOCOL)
      // a varint announcing a 1 GiB frame
      huge.send(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x04]))
      await waitFor(() => (node.tasks!.stats().rpc as any).lease.badFrames >= before.lease.badFrames + 2, { what: 'both bad streams counted' })
      // the holder's lease is intact and the node still answers
      await expect(held.complete('real', 6, 0)).resolves.toMatchObject({ id, value: { state: 'completed', claimId: held.claimId } })
      expect(node.libp2p.status).toBe('started')
    } finally {
      await raw.stop()
    }
  })

  // a member away for the commit came back with its copy unfinished: each claim its copy drew dated
  // it anew, so anti-entropy took it for a copy in flux and never sent the final (seen under overload)
  it('a claim that meets a finished task gives its certificate and result to the member that lacks them', async () => {
    // anti-entropy, and the lagging member's own sweeper, are kept out of it: only the claim can repair it
    const tasks = { ...FAST_TASKS, agents: [], leaseMs: 5_000, antiEntropyIntervalMs: 3_600_000 }
    const quiet = { ...tasks, sweepIntervalMs: 3_600_000 }
    net = await createTestnet(3, { baseDir: await tmp(), tasks })
    await net.ready()
    const [a, b] = net.nodes
    const { id } = await a!.tasks!.service.submit({ capability: NOBODY, input: 'x' })
    const target = { id, placement: (await a!.tasks!.service.get(id)).record.placement }
    await waitFor(async () => (await net!.nodes[2]!.tasks!.replica.get(id)).record !== undefined, { what: 'the third member to hold the task' })
    await net.nodes[2]!.stop()
    const lease = await waitFor(async () => a!.tasks!.leases.acquire(target), { what: 'a lease from the two members left', timeoutMs: 15_000, intervalMs: 200 })
    const result = { ran: 'while the third member was away', at: Date.now() }
    await lease.complete(result, 60, 0)
    const lagging = await net.restartNode(2, { tasks: quiet })
    await net.ready()
    expect((await lagging.tasks!.replica.get(id)).record?.final).toBeUndefined()
    await expect(b!.tasks!.leases.acquire(target)).rejects.toMatchObject({ name: 'TaskFinishedError' })
    await waitFor(async () => (await lagging.tasks!.replica.get(id)).record?.final?.state === 'completed', { what: 'the lagging member to store the certified final' })
    expect((await lagging.tasks!.replica.get(id)).result?.value).toEqual(result)
    expect(b!.tasks!.leases.stats.repaired).toBeGreaterThan(0)
  })
})
