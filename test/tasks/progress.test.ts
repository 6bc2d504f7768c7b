import { afterEach, describe, expect, it } from 'vitest'
import { ProgressHub } from '../../node/tasks/progress.js'
import { RECORDS_PROTOCOL } from '../../protocols/records/index.js'
import { RpcEndpoint } from '../../protocols/rpc/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import { quiet } from '../helpers/quiet-log.js'
import type { ProgressUpdate } from '../../node/tasks/progress.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { ProgressItem } from '../../protocols/records/index.js'
import type { Testnet } from '../../sim/testnet.js'

const ID = 'a'.repeat(64)
const item = (o: Partial<ProgressItem>): ProgressItem => ({ id: ID, claimId: 'c1', attempt: 1, seq: 0, at: 0, event: null, ...o })

/** Fails while `failing` is set, after a progress event that names its attempt. */
let failing = true
const failsThenTicks: Agent<null> = {
  name: 'fails.then.ticks',
  capabilities: ['fails.then.ticks'],
  run: async ctx => {
    ctx.progress({ attempt: ctx.attempt, failing })
    if (failing) throw new Error('failing, as asked')
    return 'done'
  }
}

/** Reports `n` progress events {i}, yielding now and then so they leave in several requests; two it cannot send. */
const ticker: Agent<{ n: number }> = {
  name: 'tick',
  capabilities: ['tick'],
  concurrency: 2,
  run: async ctx => {
    for (let i = 0; i < ctx.input.n; i++) {
      ctx.progress({ i })
      if (i === 10) {
        ctx.progress({ big: 'x'.repeat(20_000) })
        ctx.progress({ n: 1n })
      }
      if (i % 100 === 0) await new Promise(resolve => setTimeout(resolve, 5))
    }
    return { ticks: ctx.input.n }
  }
}

describe('progress hub: what a submitter keeps of a task\'s progress', () => {
  it('delivers in order, replays to a late listener, lets a newer attempt supersede, and counts the rest', () => {
    const hub = new ProgressHub({ maxEventsPerTask: 3 })
    hub.apply([item({})], 'p1')
    expect(hub.stats.unknown).toBe(1)
    hub.track(ID)
    hub.apply([0, 1, 2, 3].map(seq => item({ seq, event: seq })), 'p1')
    const seen: ProgressUpdate[] = []
    const unsubscribe = hub.subscribe(ID, u => { seen.push(u) })
    // the last three kept and replayed
    expect(seen.map(u => u.event)).toEqual([1, 2, 3])
    hub.apply([item({ seq: 3 }), item({ seq: 5, event: 5 })], 'p1')
    expect(hub.stats).toMatchObject({ duplicates: 1, gaps: 1 })
    // the same claim from another peer: dropped
    hub.apply([item({ seq: 6 })], 'p2')
    expect(hub.stats).toMatchObject({ wrongPeer: 1, stale: 0 })
    // attempt 2 on another peer supersedes, its numbering starting again; attempt 1 is stale from then on
    hub.apply([item({ claimId: 'c2', attempt: 2, seq: 0, event: 'again' })], 'p2')
    hub.apply([item({ seq: 6 })], 'p1')
    hub.apply([item({ claimId: 'c0', seq: 0 })], 'p2')
    expect(hub.stats.stale).toBe(2)
    // attempt 2 resumed by another claim after a wait (the same number: a wait is not a failure)
    // supersedes, and the claim it resumed is a leftover from then on
    hub.apply([item({ claimId: 'c3', attempt: 2, seq: 0, event: 'resumed' })], 'p3')
    hub.apply([item({ claimId: 'c2', attempt: 2, seq: 1 })], 'p2')
    expect(hub.stats.stale).toBe(3)
    // a redriven task numbers its attempts from 1 again, in its next generation: that supersedes
    // every claim of the generation before, whatever its number
    hub.apply([item({ claimId: 'g1', attempt: 1, generation: 1, seq: 0, event: 'redriven' })], 'p1')
    hub.apply([item({ claimId: 'c4', attempt: 3, seq: 0 })], 'p2')
    expect(hub.stats.stale).toBe(4)
    expect(seen.map(u => [u.event, u.peer, u.attempt])).toEqual([[1, 'p1', 1], [2, 'p1', 1], [3, 'p1', 1], [5, 'p1', 1], ['again', 'p2', 2], ['resumed', 'p3', 2], ['redriven', 'p1', 1]])
    unsubscribe()
    hub.apply([item({ claimId: 'g1', attempt: 1, generation: 1, seq: 1 })], 'p1')
    expect(seen).toHaveLength(7)
    expect(hub.recent(ID).map(u => u.seq)).toEqual([0, 0, 1])
  })

  it('keeps a bounded number of tasks, forgetting first those nobody listens to; a throwing listener is counted', () => {
    const hub = new ProgressHub({ maxTasks: 2 })
    const ids = ['1', '2', '3'].map(c => c.repeat(64))
    hub.subscribe(ids[0]!, () => { throw new Error('listener bug') })
    hub.track(ids[1]!)
    hub.track(ids[2]!)
    hub.apply([item({ id: ids[0] }), item({ id: ids[1] }), item({ id: ids[2] })], 'p1')
    expect(hub.stats).toMatchObject({ received: 2, unknown: 1, listenerErrors: 1 })
  })
})

describe('progress from the executing peer to the submitter', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('arrives at a remote submitter in order and at a local one; bad peer messages are dropped and counted', async () => {
    // one attempt is what is checked: a lease and a lag limit that a busy machine does not lapse
    net = await createTestnet(2, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, agents: i === 0 ? [ticker] : [] } }) })
    await net.ready()
    const [runner, submitter] = [net.nodes[0]!, net.nodes[1]!]
    const n = 600
    const { id } = await submitter.tasks!.service.submit({ capability: 'tick', input: { n } })
    const seen: ProgressUpdate[] = []
    submitter.tasks!.progress.subscribe(id, u => { seen.push(u) })
    expect((await submitter.tasks!.service.waitFor(id, 20_000)).result?.value).toEqual({ ticks: n })
    await waitFor(() => seen.length === n, { what: () => `${n} progress events, ${seen.length} so far` })
    expect(seen.map(u => (u.event as { i: number }).i)).toEqual(Array.from({ length: n }, (_, i) => i))
    // the two it could not send took no number: nothing looks lost
    expect(seen.map(u => u.seq)).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(runner.tasks!.executor.stats.progressDropped).toBe(2)
    expect(new Set(seen.map(u => `${u.claimId}/${u.attempt}/${u.peer}`))).toEqual(new Set([`${seen[0]!.claimId}/1/${runner.peerId.toString()}`]))
    expect(submitter.tasks!.progress.stats).toMatchObject({ received: n, gaps: 0, duplicates: 0 })
    // batched: far fewer requests than events (the count includes the task's own records requests).
    // The runner counts a batch sent once its answer is back, which on a busy machine can come
    // after the submitter applied it
    const sent = (): { sent: number, failed: number } => runner.tasks!.stats().progress as { sent: number, failed: number }
    await waitFor(() => sent().sent + sent().failed >= n, { what: () => `the runner to count its batches answered (${JSON.stringify(sent())})` })
    expect(runner.tasks!.stats().progress).toMatchObject({ sent: n, failed: 0 })
    expect((submitter.tasks!.stats().rpc as { records: { requestsServed: number } }).records.requestsServed).toBeLessThan(n / 10)

    // submitted and run on one node: delivered there directly
    const local = await runner.tasks!.service.submit({ capability: 'tick', input: { n: 5 } })
    const mine: unknown[] = []
    runner.tasks!.progress.subscribe(local.id, u => { mine.push(u.event) })
    await runner.tasks!.service.waitFor(local.id, 20_000)
    await waitFor(() => mine.length === 5, { what: 'local progress' })
    expect(mine).toEqual([0, 1, 2, 3, 4].map(i => ({ i })))

    // a peer that speaks the records protocol sends nonsense and leftovers
    const sender = await net.addNode({ tasks: false })
    await sender.libp2p.dial(submitter.libp2p.getMultiaddrs()[0]!)
    const client = new RpcEndpoint(sender.libp2p, { protocol: RECORDS_PROTOCOL, handler: async () => ({}), log: quiet })
    await client.start()
    const bad = (submitter.tasks!.stats().rpc as { badRequests: number }).badRequests
    const malformed = await client.request(submitter.peerId, { op: 'progress', events: [{ id: 'not a task id', seq: -1 }] }) as { status: string }
    expect(malformed.status).toBe('ERROR')
    expect((submitter.tasks!.stats().rpc as { badRequests: number }).badRequests).toBe(bad + 1)
    const claimId = seen[0]!.claimId
    const stats = { ...submitter.tasks!.progress.stats }
    for (const events of [
      [item({ id: 'b'.repeat(64) })], // a task the submitter never submitted
      [item({ id, claimId, seq: n })], // the runner's claim, from someone else
      [item({ id, claimId: 'forged', seq: 0 })], // a rival claim of the same attempt
      // a claim of a later attempt nobody granted, with words for the user's stream: the placement says no
      [item({ id, claimId: 'injected', attempt: 10_000, seq: 0, event: { token: 'not from the model' } })]
    ]) expect(await client.request(submitter.peerId, { op: 'progress', events })).toEqual({ status: 'OK' })
    await client.stop()
    // each unknown claim is checked with the placement before a listener sees anything
    await waitFor(() => submitter.tasks!.progress.stats.forged >= stats.forged + 3, { what: () => `forged claims counted (${JSON.stringify(submitter.tasks!.progress.stats)})` })
    expect(submitter.tasks!.progress.stats).toMatchObject({ unknown: stats.unknown + 1, forged: stats.forged + 3, received: n })
    expect(seen).toHaveLength(n)
  })

  it('a redriven task\'s progress reaches its submitter, though its attempts are numbered from 1 again', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, agents: i === 0 ? [failsThenTicks] : [] } }) })
    await net.ready()
    const submitter = net.nodes[1]!
    failing = true
    const { id } = await submitter.tasks!.service.submit({ capability: 'fails.then.ticks', input: null, maxAttempts: 2 })
    const seen: ProgressUpdate[] = []
    submitter.tasks!.progress.subscribe(id, u => { seen.push(u) })
    expect((await submitter.tasks!.service.waitFor(id, 60_000)).record.final?.state).toBe('dead')
    await waitFor(() => seen.length === 2, { what: () => `both failed attempts' progress, ${seen.length} so far` })
    failing = false
    await submitter.tasks!.service.redrive(id)
    expect((await submitter.tasks!.service.waitFor(id, 60_000)).record.final?.state).toBe('completed')
    await waitFor(() => seen.length === 3, { what: () => `the redriven run's progress (${JSON.stringify(submitter.tasks!.progress.stats)})` })
    expect(seen.map(u => [u.attempt, u.generation ?? 0, u.event])).toEqual([[1, 0, { attempt: 1, failing: true }], [2, 0, { attempt: 2, failing: true }], [1, 1, { attempt: 1, failing: false }]])
  })
})
