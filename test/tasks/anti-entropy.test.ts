import { afterEach, describe, expect, it } from 'vitest'
import { BUCKET_TARGET, bucketDigits } from '../../protocols/replica/digest.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'
import { PartitionController } from '../../sim/faults.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { echoAgent } from '../../node/agents/basic.js'
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

/** `n` unfinished tasks placed on `members`, made at `now`, written to `node`'s replica only. */
async function putOnly (node: AgentNode, members: string[], n: number, tag: string, now = Date.now()): Promise<string[]> {
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

  it('gives its digests again while nothing changed, computes them anew after a write or while a record may change with the clock, and still repairs', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const all = net.nodes.map(n => n.peerId.toString())
    const ae = (n: AgentNode): AgentNode['tasks'] & object => n.tasks!
    const counts = (): { computed: number, reused: number } => net!.nodes.reduce((sum, n) => ({ computed: sum.computed + ae(n).antiEntropy.stats.digestsComputed, reused: sum.reused + ae(n).antiEntropy.stats.digestsReused }), { computed: 0, reused: 0 })
    const everyRound = async (): Promise<void> => { for (const n of net!.nodes) await ae(n).antiEntropy.runRound() }
    const past = Date.now() - 60_000

    // settled records of all three, written to a only; and a few of a and b alone dated an hour
    // ahead (a skewed clock): whether those are compared by content changes with the clock alone
    const settled = await putOnly(a, all, 300, 'settled', past)
    const ahead = await putOnly(a, [all[0]!, all[1]!], 20, 'ahead', Date.now() + 3_600_000)
    await everyRound()
    expect(settled.every(id => ae(b).replica.hashes.has(id) && ae(c).replica.hashes.has(id))).toBe(true)
    expect(ahead.every(id => ae(b).replica.hashes.has(id))).toBe(true)
    await everyRound()

    // nothing changed: of the 12 digests a round on each node makes (each asks two peers and
    // answers two), only the 4 of the pair a, b are made anew
    const before = counts()
    await everyRound()
    await everyRound()
    const after = counts()
    expect(after.computed - before.computed).toBe(2 * 4)
    expect(after.reused - before.reused).toBe(2 * 8)

    // a record written on b: b's digest for c is made anew (b's index changed), and both get it
    const late = await putOnly(b, all, 1, 'late', past)
    const bStats = { ...ae(b).antiEntropy.stats }
    await ae(b).antiEntropy.runRound()
    expect(ae(b).antiEntropy.stats.digestsComputed - bStats.digestsComputed).toBe(2)
    expect(ae(b).antiEntropy.stats.digestsReused - bStats.digestsReused).toBe(0)
    expect(ae(b).antiEntropy.stats.recordsPushed - bStats.recordsPushed).toBe(2)
    expect(ae(a).replica.hashes.has(late[0]!) && ae(c).replica.hashes.has(late[0]!)).toBe(true)
  })

  it('fetches the result of a completed task a member holds without it, which no digest shows', async () => {
    const partition = new PartitionController()
    // a longer lease: the two members certify while the third is away, however busy the machine
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...TASKS, leaseMs: 5_000, agents: [echoAgent] }, perNode: i => ({ connectionGater: partition.gater(() => net?.nodes[i]?.peerId.toString()) }) })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    await partition.split([[a, c], [b]])
    await waitFor(() => a.tasks!.presence.live().length === 2, { what: 'a and c to see only each other', timeoutMs: 10_000 })
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await a.tasks!.service.submit({ capability: 'echo', input: { i } })).id)
    for (const id of ids) expect((await a.tasks!.service.waitFor(id, 30_000)).record.final?.state).toBe('completed')
    // b, a member that never granted, takes the certified records alone: what a notice that brought no result leaves
    for (const id of ids) await b.tasks!.replica.put((await a.tasks!.replica.get(id)).record!)
    for (const id of ids) expect((await b.tasks!.replica.get(id)).result).toBeUndefined()
    partition.heal()
    await net.ready(20_000)
    // the records are the same on every member, so the digests agree: the round asks for the results
    await b.tasks!.antiEntropy.runRound()
    for (const [i, id] of ids.entries()) expect((await b.tasks!.replica.get(id)).result?.value, `result ${i} on b`).toEqual({ i })
    expect(b.tasks!.antiEntropy.stats.resultsRepaired).toBeGreaterThan(0)
  })
})
