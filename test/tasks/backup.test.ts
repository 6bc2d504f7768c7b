import { join } from 'node:path'
import { Level } from 'level'
import { afterEach, describe, expect, it } from 'vitest'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

describe('a placement whose first live member does not act on a task', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('has it decided by the other members after backupAfterMs: a task past its deadline whose first member\'s copy is unreadable goes dead', async () => {
    const baseDir = await tmp()
    // nobody offers the capability: the task waits on its placement until its deadline, then is decided dead
    net = await createTestnet(3, { baseDir, tasks: { ...FAST_TASKS, agents: [], backupAfterMs: 1_000 } })
    await net.ready()
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'ghost', input: 'waits', deadlineMs: 2_000 })
    const placement = (await net.nodes[0]!.tasks!.replica.get(id)).record!.placement.members
    const index = (peer: string): number => net!.nodes.findIndex(n => n.peerId.toString() === peer)
    const first = index(placement[0] as string)
    // the first member's copy is damaged on disk while it is down; it comes back live, and takes no part in the task
    await net.nodes[first]!.stop()
    const db = new Level<string, string>(join(baseDir, `node-${first}`, 'store'), { valueEncoding: 'utf8' })
    await db.sublevel<string, string>('tasks', { valueEncoding: 'utf8' }).put(id, '{"torn')
    await db.close()
    await net.restartNode(first)
    await net.ready()
    const others = placement.slice(1).map(p => net!.nodes[index(p)]!)
    await waitFor(async () => {
      for (const n of others) if ((await n.tasks!.replica.get(id)).record?.final?.state !== 'dead') return false
      return true
    }, { what: 'the other members to decide the task dead', timeoutMs: 30_000 })
    expect(net.nodes[first]!.tasks!.replica.stats.damagedRefusals).toBeGreaterThan(0)
  })
})
