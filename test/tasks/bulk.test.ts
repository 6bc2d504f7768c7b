import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { BULK_CHUNK_RECORDS } from '../../node/tasks/task-service.js'
import { createTestnet } from '../../sim/testnet.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { SubmitAnswer, SubmitManyEntry } from '../../node/tasks/task-service.js'
import type { Testnet } from '../../sim/testnet.js'

/** records requests this node sent to other peers (its own replica is called directly, not counted) */
/** Records requests of `op` that these nodes served: a submit's puts, not the offers and reads that go on beside it. */
function served (nodes: AgentNode[], op: string): number {
  return nodes.reduce((n, node) => n + ((node.tasks!.handlerStats.served ?? {})[`records.${op}`] ?? 0), 0)
}

function acknowledged (entries: SubmitManyEntry[]): SubmitAnswer[] {
  return entries.filter((e): e is SubmitAnswer => !('error' in e))
}

async function expectAllCompleted (node: AgentNode, ids: string[]): Promise<void> {
  const views = await Promise.all(ids.map(async id => node.tasks!.service.waitFor(id, 60_000)))
  // with the reason, so that a failure says why a task did not complete
  const notCompleted = views.filter(v => v.record.final?.state !== 'completed').map(v => `${v.record.task.id.slice(0, 8)}: ${v.record.final?.state ?? 'unfinished'} ${v.record.final?.reason ?? ''}`)
  expect(notCompleted).toEqual([])
}

describe('bulk submit', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('gives a bad task its own error and stores, acknowledges and runs the others', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [echoAgent] } })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const before = await s.submit({ capability: 'echo', input: 'kept', idempotencyKey: 'k-old' })
    const entries = await s.submitMany([
      { capability: 'echo', input: 0 },
      { capability: 'has spaces', input: 1 },
      { capability: 'echo', input: 2, maxAttempts: 0 },
      { capability: 'echo', input: 3, idempotencyKey: 'k-new' },
      { capability: 'echo', input: 'kept', idempotencyKey: 'k-old' },
      { capability: 'echo', input: 3, idempotencyKey: 'k-new' },
      { capability: 'nobody.offers.this', input: 6 },
      { capability: 'echo', input: 7 },
      // past what the members' schema takes: refused here, not by every member (a 503)
      { capability: 'echo', input: 8, timeoutMs: 7 * 24 * 3600_000 + 1 }
    ])
    expect(entries).toHaveLength(9)
    expect(entries.map(e => 'error' in e ? e.error.name : e.created)).toEqual([true, 'InvalidTaskError', 'InvalidTaskError', true, false, false, true, true, 'InvalidTaskError'])
    // an existing key names its task; a key repeated within the batch names the batch's first
    expect(entries[4]).toEqual({ id: before.id, created: false })
    expect(entries[5]).toEqual({ id: (entries[3] as SubmitAnswer).id, created: false })
    expect((entries[6] as SubmitAnswer).warning).toMatch(/no live peer offers nobody\.offers\.this/)
    expect((entries[0] as SubmitAnswer).warning).toBeUndefined()
    expect(s.stats.submitted).toBe(1 + 4)
    const ran = [0, 3, 7].map(i => (entries[i] as SubmitAnswer).id)
    await expectAllCompleted(net.nodes[0]!, ran)
    // every other node reads them too: stored on their placements, not only here
    for (const id of ran) expect((await net.nodes[2]!.tasks!.service.get(id)).record.final?.state).toBe('completed')
    expect((await s.get((entries[6] as SubmitAnswer).id)).record.final).toBeUndefined()
    // a key resent for an unfinished task nobody offers is warned as its first submit was
    const unoffered = { capability: 'nobody.offers.this', input: 9, idempotencyKey: 'k-none' }
    const [made] = await s.submitMany([unoffered]) as SubmitAnswer[]
    const again = await s.submitMany([unoffered, { capability: 'echo', input: 'kept', idempotencyKey: 'k-old' }]) as SubmitAnswer[]
    expect(made?.warning).toMatch(/no live peer offers/)
    expect(again[0]).toMatchObject({ id: made?.id, created: false, warning: expect.stringMatching(/no live peer offers/) })
    expect(again[1]).toEqual({ id: before.id, created: false })
    // once final (canceled here), a retry of it is not warned: nothing waits for a peer
    await s.cancel(made!.id)
    const final = await s.submitMany([unoffered]) as SubmitAnswer[]
    expect(final[0]).toEqual({ id: made?.id, created: false })
    expect(await s.submit(unoffered)).toEqual({ id: made?.id, created: false })
  })

  it('refuses an empty batch and one over the limit as a whole', async () => {
    net = await createTestnet(1, { baseDir: await tmp(), tasks: FAST_TASKS })
    const s = net.nodes[0]!.tasks!.service
    await expect(s.submitMany([])).rejects.toMatchObject({ name: 'InvalidTaskError' })
    await expect(s.submitMany(Array.from({ length: 1_001 }, (_, i) => ({ capability: 'echo', input: i })))).rejects.toMatchObject({ name: 'InvalidTaskError' })
    expect(s.stats.submitted).toBe(0)
  })

  it('sends 200 tasks on 5 nodes as one records request per member and chunk, not one per task', async () => {
    net = await createTestnet(5, {
      baseDir: await tmp(),
      // the submitter runs nothing and neither pulls nor runs anti-entropy: every records request it sends is the submit's
      // 200 tasks at once on 2 shared cores: leases of 5 s, so that a busy event loop does not expire them into dead tasks
      // five nodes share one event loop here: a lag limit that real daemons, each with its own, never reach
      // and requests of 10 s: a put-many of 200 records waits behind everything else on a busy machine
      perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, rpcTimeoutMs: 10_000, agents: i === 0 ? [] : [echoAgent], ...(i === 0 ? { pullIntervalMs: 600_000, antiEntropyIntervalMs: 600_000 } : {}) } })
    })
    await net.ready()
    const submitter = net.nodes[0]!
    const others = net.nodes.slice(1)
    // counted where they are served: a slow submit outlasts the first re-announcements, which go as offers (records requests too)
    const [putManyBefore, putBefore] = [served(others, 'put-many'), served(others, 'put')]
    const entries = await submitter.tasks!.service.submitMany(Array.from({ length: 200 }, (_, i) => ({ capability: 'echo', input: { i } })))
    const requests = served(others, 'put-many') - putManyBefore
    expect(served(others, 'put')).toBe(putBefore)
    const ok = acknowledged(entries)
    expect(ok).toHaveLength(200)
    // four other members, each sent its share in chunks of at most BULK_CHUNK_RECORDS (small records: one chunk)
    expect(requests).toBeGreaterThanOrEqual(1)
    expect(requests).toBeLessThanOrEqual(4 * Math.ceil(200 / BULK_CHUNK_RECORDS))
    // each task is on a majority of its placement
    for (const { id } of ok.slice(0, 20)) {
      const { members } = (await submitter.tasks!.service.get(id)).record.placement
      const holders = await Promise.all(net.nodes.map(async n => (await n.tasks!.replica.get(id)).record !== undefined))
      const holding = net.nodes.filter((_, i) => holders[i]).map(n => n.peerId.toString())
      expect(holding.filter(p => members.includes(p)).length).toBeGreaterThanOrEqual(2)
    }
    await expectAllCompleted(submitter, ok.map(e => e.id))
  })

  it('counts each task of a batch that a member stored only half of by its own ids: the stored half is acknowledged, the rest refused', async () => {
    // three nodes, so every placement is all three; one is down, so each task needs the submitter and node 1
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, rpcTimeoutMs: 10_000, agents: [echoAgent] } })
    await net.ready()
    await net.nodes[2]!.stop()
    // node 1 answers every put-many, but stores only the tasks of even input: a peer that answers half a batch
    const half = net.nodes[1]!.tasks!.replica
    const put = half.put.bind(half)
    half.put = async (record, result) => (record.task.input as { i: number }).i % 2 === 0 ? await put(record, result) : undefined
    const entries = await net.nodes[0]!.tasks!.service.submitMany(Array.from({ length: 20 }, (_, i) => ({ capability: 'echo', input: { i } })))
    const outcome = entries.map((e, i) => `${i}: ${'error' in e ? e.error.name : 'acknowledged'}`)
    expect(outcome).toEqual(Array.from({ length: 20 }, (_, i) => `${i}: ${i % 2 === 0 ? 'acknowledged' : 'QuorumUnavailableError'}`))
    await expectAllCompleted(net.nodes[0]!, acknowledged(entries).map(e => e.id))
    // a refused task names its id: the submitter, a member, stored it and may yet run it, and a client can follow or cancel it
    for (const [i, e] of entries.entries()) {
      if (!('error' in e)) continue
      expect((await net.nodes[0]!.tasks!.replica.get(e.id!)).record?.task.input).toEqual({ i })
    }
  })

  it('acknowledges the tasks whose placement still has a majority when two members are down, and refuses the others', async () => {
    // 10 minutes of membership: the stopped nodes stay members, so placements keep naming them
    // leases and requests that a busy 2-core machine does not lapse (five nodes share one event loop)
    net = await createTestnet(5, { baseDir: await tmp(), tasks: { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, rpcTimeoutMs: 10_000, agents: [echoAgent] } })
    await net.ready()
    const down = [net.nodes[3]!, net.nodes[4]!]
    const downIds = down.map(n => n.peerId.toString())
    for (const n of down) await n.stop()
    const s = net.nodes[0]!.tasks!.service
    const entries = await s.submitMany(Array.from({ length: 60 }, (_, i) => ({ capability: 'echo', input: { i } })))
    const ok = acknowledged(entries)
    const refused = entries.filter((e): e is { error: Error } => 'error' in e)
    // C(5,3) = 10 placements, 3 of them hold both stopped nodes: 60 tasks have both kinds
    expect(ok.length).toBeGreaterThan(0)
    expect(refused.length).toBeGreaterThan(0)
    for (const { error } of refused) {
      expect(error.name).toBe('QuorumUnavailableError')
      expect(error.message).toMatch(/of 3 placement members, 2 needed/)
      // a member that stored it may run it later: a retry without a key would make a second task
      expect(error.message).toMatch(/a member that stored it may still run it once the others are back: a retry makes another task \(submit with an idempotency key to retry safely\)$/)
      // a member not heard from when the shortfall was known is not said to have failed to answer
      expect(error.message).not.toMatch(/: no answer[;)]/)
    }
    // the submitter keeps a copy of each acknowledged task, none with two members down; of a refused
    // one only its own as a member of the placement (without a key, no retry could name a cache copy)
    const records = await s.list({ limit: 1_000 })
    const me = net.nodes[0]!.peerId.toString()
    const lostMajority = (members: string[]): boolean => members.filter(m => downIds.includes(m)).length >= 2
    for (const { id } of ok) expect(lostMajority(records.find(r => r.task.id === id)!.placement.members)).toBe(false)
    const leftover = records.filter(r => lostMajority(r.placement.members))
    expect(leftover.filter(r => !r.placement.members.includes(me))).toEqual([])
    expect(leftover.length).toBeLessThanOrEqual(refused.length)
    expect(records).toHaveLength(ok.length + leftover.length)
    expect(s.stats.submitted).toBe(ok.length)
    await expectAllCompleted(net.nodes[0]!, ok.map(e => e.id))
  })
})
