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
})
