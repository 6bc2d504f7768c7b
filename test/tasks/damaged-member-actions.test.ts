import { afterEach, describe, expect, it } from 'vitest'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

/*
 * A member whose own state of a task is unreadable takes no part in it, but a client's action
 * through that node still reaches the placement: the other members, a majority, decide it.
 */
describe('an action through a member whose own state of the task is damaged', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('cancels the task on the other members, and the damaged one keeps refusing it', async () => {
    // nobody offers the capability: the task waits on its placement, the three nodes
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, agents: [] } })
    await net.ready()
    const [a, damaged] = [net.nodes[0]!, net.nodes[1]!]
    const { id } = await a.tasks!.service.submit({ capability: 'nobody-runs-this', input: 'waits' })
    await waitFor(async () => (await damaged.tasks!.replica.get(id)).record !== undefined, { what: 'the damaged member to hold the task' })
    // as a read of its lease state or record that found bytes no schema reads marks it
    damaged.store.damagedTasks.add(id)
    const view = await damaged.tasks!.service.cancel(id)
    expect(view.record.final?.state).toBe('canceled')
    for (const node of net.nodes.filter(n => n !== damaged)) {
      expect((await node.tasks!.replica.get(id)).record?.final?.state).toBe('canceled')
    }
    // the cancel asked it too, and it refused, named
    expect(damaged.tasks!.replica.stats.damagedRefusals).toBeGreaterThan(0)
  })
})
