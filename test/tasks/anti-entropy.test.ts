import { afterEach, describe, expect, it } from 'vitest'
import { BUCKET_TARGET, bucketDigits } from '../../protocols/replica/digest.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet } from '../../sim/testnet.js'

// rounds only when the test runs them, every record compared at once; no sweeps or pulls in the
// way; inputs and results of 16 KiB, so a records frame is 96 KiB and holds about 1,000 ids
/** how long a changed record counts as in flux in the digest test: long enough to outlast two rounds on a busy machine */
const MIN_AGE_MS = 3_000

const TASKS = {
  ...FAST_TASKS,
  antiEntropyIntervalMs: 3_600_000,
  antiEntropyMinAgeMs: 1,
  sweepIntervalMs: 3_600_000,
  pullIntervalMs: 3_600_000,
  rpcTimeoutMs: 15_000,
  maxInputBytes: 16 * 1024,
  maxResultBytes: 16 * 1024,
  agents: []
}

/** `n` unfinished tasks placed on all three nodes, written to `node`'s replica only. */
async function putOnly (node: AgentNode, members: string[], n: number, tag: string): Promise<string[]> {
  const now = Date.now()
  const records = Array.from({ length: n }, (_, i) => newRecord(makeTask({ capability: 'nobody.runs', input: { tag, i }, submitter: members[0]!, maxAttempts: 3, timeoutMs: 1_000, deadline: now + 3_600_000, now }), { epoch: 0, members }, now))
  const kept = await Promise.all(records.map(async r => node.tasks!.replica.put(r)))
  expect(kept.every(r => r !== undefined)).toBe(true)
  return records.map(r => r.task.id)
}

describe('anti-entropy over many records', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('buckets grow with the records two peers share', () => {
    expect(bucketDigits(0)).toBe(1)
    expect(bucketDigits(16 * BUCKET_TARGET)).toBe(1)
    expect(bucketDigits(16 * BUCKET_TARGET + 1)).toBe(2)
    expect(bucketDigits(256 * BUCKET_TARGET)).toBe(2)
    expect(bucketDigits(256 * BUCKET_TARGET + 1)).toBe(3)
    // capped: a digest stays about 106 KB, and within what a peer's frame takes
    expect(bucketDigits(1e9)).toBe(3)
    expect(bucketDigits(1e9, 48 * 1024)).toBe(2)
    expect(bucketDigits(1e9, 1_000)).toBe(1)
  })

  it('repairs members that lack more records than one request carries, then compares only the buckets that differ', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const members = net.nodes.map(n => n.peerId.toString())
    const holds = (node: AgentNode, ids: string[]): boolean => ids.every(id => node.tasks!.replica.hashes.has(id))
    const ae = a.tasks!.antiEntropy

    // 1,500 records the other two lack: their ids and hashes are more than one 96 KiB frame holds
    // (the code before sent them in one request, which the peers refused, every round)
    const many = await putOnly(a, members, 1_500, 'many')
    expect(holds(b, many) || holds(c, many)).toBe(false)
    await ae.runRound()
    expect(holds(b, many)).toBe(true)
    expect(holds(c, many)).toBe(true)
    expect(ae.stats.recordsPushed).toBe(3_000)

    // now they share 1,520 records, 20 of them new to the other two: 256 buckets, so about 6 ids
    // are compared for each new record, where 16 buckets compared nearly all 1,520 with each peer
    const few = await putOnly(a, members, 20, 'few')
    const before = { ...ae.stats }
    await ae.runRound()
    expect(holds(b, few)).toBe(true)
    expect(holds(c, few)).toBe(true)
    expect(ae.stats.recordsPushed - before.recordsPushed).toBe(40)
    const compared = ae.stats.idsSent - before.idsSent
    expect(compared).toBeGreaterThanOrEqual(40)
    expect(compared).toBeLessThan(700)

    // and a round with nothing new compares no ids at all
    const settled = ae.stats.idsSent
    await ae.runRound()
    expect(ae.stats.idsSent).toBe(settled)
  })

  it('gives its digests again while nothing changed, computes them anew after a write or while a record is in flux, and still repairs', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...TASKS, antiEntropyMinAgeMs: MIN_AGE_MS } })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const members = net.nodes.map(n => n.peerId.toString())
    const computed = (): number => net!.nodes.reduce((sum, n) => sum + n.tasks!.antiEntropy.stats.digestsComputed, 0)
    const reused = (): number => net!.nodes.reduce((sum, n) => sum + n.tasks!.antiEntropy.stats.digestsReused, 0)
    const settle = async (ids: string[]): Promise<void> => {
      // a record is compared by content once antiEntropyMinAgeMs passed since it changed: a clock
      // rule, so the test waits for the clock
      const changed = Math.max(...await Promise.all(ids.map(async id => (await a.tasks!.replica.get(id)).record?.updatedAt ?? 0)))
      while (Date.now() <= changed + MIN_AGE_MS) await new Promise(resolve => setTimeout(resolve, 50))
    }
    const ae = a.tasks!.antiEntropy

    const first = await putOnly(a, members, 300, 'first')
    // in flux: compared for presence only, and not kept (the clock alone will change the digest)
    await ae.runRound()
    expect(first.every(id => b.tasks!.replica.hashes.has(id) && c.tasks!.replica.hashes.has(id))).toBe(true)
    const version = a.tasks!.replica.indexVersion
    const inFlux = ae.stats.digestsComputed
    await ae.runRound()
    // nothing changed on a, and still its digests for b and c were made anew
    expect(a.tasks!.replica.indexVersion).toBe(version)
    expect(ae.stats.digestsComputed - inFlux).toBe(2)

    // settled: computed once more for each pair and side, then given again, asking and answering
    await settle(first)
    const everyRound = async (): Promise<void> => { for (const n of net!.nodes) await n.tasks!.antiEntropy.runRound() }
    await everyRound()
    const steady = computed()
    const reusedBefore = reused()
    await everyRound()
    await everyRound()
    expect(computed()).toBe(steady)
    // each node asks two peers and answers two, each round
    expect(reused() - reusedBefore).toBe(2 * 3 * 4)

    // a record only b holds: b's index changed, so b computes anew and the others get it
    const late = await putOnly(b, members, 1, 'late')
    await settle(first)
    const pushed = b.tasks!.antiEntropy.stats.recordsPushed
    await b.tasks!.antiEntropy.runRound()
    expect(computed()).toBeGreaterThan(steady)
    expect(b.tasks!.antiEntropy.stats.recordsPushed - pushed).toBe(2)
    expect(a.tasks!.replica.hashes.has(late[0]!) && c.tasks!.replica.hashes.has(late[0]!)).toBe(true)
  })
})
