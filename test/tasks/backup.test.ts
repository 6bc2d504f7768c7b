import { join } from 'node:path'
import { Level } from 'level'
import { afterEach, describe, expect, it } from 'vitest'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet } from '../../sim/testnet.js'

/** Nobody offers the capability: a task waits on its placement until its deadline, then is decided dead. */
const GHOST = { capability: 'ghost', input: 'waits' }

async function deadOn (nodes: AgentNode[], id: string): Promise<boolean> {
  for (const n of nodes) if ((await n.tasks!.replica.get(id)).record?.final?.state !== 'dead') return false
  return true
}

/**
 * A GHOST task submitted on node 0 with its deadline `deadlineMs` away: its id, the deadline, its
 * placement's first member (by index) and the other members.
 */
async function ghostTask (net: Testnet, deadlineMs: number): Promise<{ id: string, deadline: number, first: number, others: AgentNode[] }> {
  const deadline = Date.now() + deadlineMs
  const { id } = await net.nodes[0]!.tasks!.service.submit({ ...GHOST, deadlineMs })
  // the submit answers once a majority stored the task: the submitter's own write may land after
  // it, so the placement is read as a client would, not from that copy
  const placement = (await net.nodes[0]!.tasks!.service.get(id)).record.placement.members
  const index = (peer: string): number => net.nodes.findIndex(n => n.peerId.toString() === peer)
  return { id, deadline, first: index(placement[0] as string), others: placement.slice(1).map(p => net.nodes[index(p)]!) }
}

/** The other members decide the task dead, one of them backing the first member up. */
async function expectBackedUp (others: AgentNode[], id: string, what: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => deadOn(others, id), { what, timeoutMs })
  expect(others.reduce((sum, n) => sum + n.tasks!.sweeper.stats.backedUp, 0)).toBeGreaterThan(0)
}

describe('a placement whose first live member does not act on a task', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('has it decided by the next member after backupAfterMs: a task past its deadline whose first member\'s copy is unreadable goes dead', async () => {
    const baseDir = await tmp()
    // the deadline's shorter wait (deadlineBackupMs) held off: backupAfterMs is the shorter here
    net = await createTestnet(3, { baseDir, tasks: { ...FAST_TASKS, agents: [], backupAfterMs: 1_000, deadlineBackupMs: 600_000 } })
    await net.ready()
    // the deadline comes well after the damaged member is back and live: until then the next member is first
    const { id, deadline, first, others } = await ghostTask(net, 15_000)
    // the first member's copy is damaged on disk while it is down; it comes back live, and takes no part in the task
    await net.nodes[first]!.stop()
    const db = new Level<string, string>(join(baseDir, `node-${first}`, 'store'), { valueEncoding: 'utf8' })
    await db.sublevel<string, string>('tasks', { valueEncoding: 'utf8' }).put(id, '{"torn')
    await db.close()
    await net.restartNode(first)
    await net.ready()
    expect(Date.now(), 'the damaged member back and live before the deadline').toBeLessThan(deadline)
    await expectBackedUp(others, id, 'the other members to decide the task dead', 45_000)
  })
  it('has a task past its deadline decided by the next member after deadlineBackupMs, not backupAfterMs: the first member reads the deadline by its own clock, which may run behind', async () => {
    const baseDir = await tmp()
    const tasks = { ...FAST_TASKS, agents: [], backupAfterMs: 120_000, deadlineBackupMs: 1_000 }
    net = await createTestnet(3, { baseDir, tasks })
    await net.ready()
    // the deadline comes after the first member is back and live: until then the next member is first
    const { id, deadline, first, others } = await ghostTask(net, 10_000)
    // a first member that sees the deadline late, as one whose clock runs minutes behind does: it
    // comes back live and sweeps no more
    await net.nodes[first]!.stop()
    await net.restartNode(first, { tasks: { ...tasks, sweepIntervalMs: 600_000 } })
    await net.ready()
    expect(Date.now(), 'the first member back and live before the deadline').toBeLessThan(deadline)
    // with backupAfterMs alone it would wait 2 minutes
    await expectBackedUp(others, id, 'the next member to decide the task dead', 30_000)
  })

  it('leaves it to a healthy first member: no other member takes anything up', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [], backupAfterMs: 20_000, deadlineBackupMs: 20_000 } })
    await net.ready()
    const { id } = await net.nodes[0]!.tasks!.service.submit({ ...GHOST, deadlineMs: 1_000 })
    await waitFor(async () => deadOn(net!.nodes, id), { what: 'the task to be decided dead', timeoutMs: 15_000 })
    expect(net.nodes.map(n => n.tasks!.sweeper.stats.backedUp)).toEqual([0, 0, 0])
  })
})
