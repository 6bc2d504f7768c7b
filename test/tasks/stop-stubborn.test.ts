import { afterEach, describe, expect, it } from 'vitest'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { gatedAgent } from '../helpers/gated.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

describe('a node stopping while its agent ignores the abort', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('lets go of the run\'s lease once the stop\'s grace is over: its renew timer does not outlive the node', async () => {
    // the agent waits for the test, whatever its signal says; a 30 s lease would renew long after the stop
    const { agent, open } = gatedAgent('late', 1)
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 30_000, agents: i === 0 ? [agent] : [] } }) })
    await net.ready()
    const a = net.nodes[0]!
    await a.tasks!.service.submit({ capability: 'gated', input: 'stubborn' })
    await waitFor(() => a.tasks!.executor.running().length === 1, { what: 'the agent to run on a' })
    expect(a.tasks!.leases.stats.lost).toBe(0)
    await a.stop()
    expect(a.tasks!.leases.stats.lost).toBe(1)
    open()
  })
})
