import { afterEach, describe, expect, it } from 'vitest'
import { UnrecoverableTaskError } from '../../node/runtime/agent.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'
import type { AgentNode } from '../../node/create-node.js'

describe('a redriven task run by a peer outside its placement', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('is certified by its holder at the new generation when the holder kept no copy, not left for recovery', async () => {
    // the first generation's runs fail for good; the redrive's run succeeds. Told by a switch, not by
    // counting runs: a lease lapsed under load ran a first generation twice, and it completed
    let succeeds = false
    const flip: Agent = {
      name: 'flip',
      capabilities: ['flip'],
      concurrency: 4,
      run: async () => {
        if (succeeds) return 'second run'
        throw new UnrecoverableTaskError('first run fails')
      }
    }
    const baseDir = await tmp()
    // a 3 s lease: under load the tests' 500 ms one lapsed before the holder's own commit, and
    // recovery certified the result instead (what the last check tells apart)
    net = await createTestnet(4, { baseDir, perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 3_000, agents: i === 3 ? [flip] : [] } }) })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    let runner = net.nodes[3]!
    // a placement without the runner: its copy of the task is a runner's, not a member's, and a redrive does not reach it
    let id = ''
    for (let i = 0; id === ''; i++) {
      if (i > 50) throw new Error('no placement without the runner in 50 tries')
      // attempts to spare for the redrive (a saturated machine lapses leases); the first run's
      // UnrecoverableTaskError makes the first generation dead at once
      const r = await s.submit({ capability: 'flip', input: i, maxAttempts: 5 })
      if (!(await s.get(r.id)).record.placement.members.includes(runner.peerId.toString())) id = r.id
    }
    expect((await s.waitFor(id, 15_000)).record.final?.state).toBe('dead')
    // the runner of the first attempt kept a copy (a redrive's notice brings it up to date): a new
    // peer takes its place, which knows nothing of the task and makes its copy from the announcement
    await runner.stop()
    runner = await net.restartNode(3, { dataDir: `${baseDir}/new-runner` })
    await net.ready()
    const before = runner.tasks!.executor.stats.completed
    succeeds = true
    await s.redrive(id)
    const done = await s.waitFor(id, 15_000)
    expect(done.record.final?.state).toBe('completed')
    expect(done.record.generation).toBe(1)
    expect(done.result?.value).toBe('second run')
    // the holder's own vote request made the certificate: reported as generation 0 it was "not accepted",
    // and the task completed only when the sweeper's recovery gathered the members' votes
    // (counted once the holder's own commit returns, which may be just after the members stored it)
    await waitFor(() => runner.tasks!.executor.stats.completed - before === 1, { what: 'the holder to count its result certified', timeoutMs: 10_000 })
  })

  it('a member stopped while its dead task was redriven answers the new generation once back, not its dead copy, to a wait and to a read', async () => {
    // the runs of the first two generations fail for good, the third's completes. Told by a switch,
    // not by counting runs: beside a loaded CI run a lapsed lease ran the first generation twice, and
    // the count then made the second generation complete
    let completes = false
    const third: Agent = { name: 'third', capabilities: ['third'], run: async () => { if (!completes) throw new UnrecoverableTaskError('this generation fails'); return 'third run' } }
    // no anti-entropy while the test reads: only the read itself may bring the redrive
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, antiEntropyIntervalMs: 600_000, agents: [third] } })
    await net.ready()
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'third', input: 'x', maxAttempts: 5 })
    expect((await s.waitFor(id, 15_000)).record.final?.state).toBe('dead')
    /** Node 2, a member, misses a redrive: stopped before it, started after the new generation ended. */
    const missRedrive = async (generation: number): Promise<AgentNode> => {
      await waitFor(async () => (await net!.nodes[2]!.tasks!.replica.get(id)).record?.final?.generation === generation - 1, { what: 'the third member to hold the dead end' })
      await net!.nodes[2]!.stop()
      await s.redrive(id)
      expect((await s.waitFor(id, 15_000)).record.final?.generation).toBe(generation)
      const back = await net!.restartNode(2)
      await net!.ready()
      expect((await back.tasks!.replica.get(id)).record?.generation).toBe(generation - 1)
      return back
    }
    // a wait on a member starts from its own copy, unless that is a dead end
    const waited = await (await missRedrive(1)).tasks!.service.waitFor(id, 5_000)
    expect({ state: waited.record.final?.state, generation: waited.record.final?.generation }).toEqual({ state: 'dead', generation: 1 })
    completes = true
    const read = await (await missRedrive(2)).tasks!.service.get(id)
    expect({ state: read.record.final?.state, generation: read.record.generation, result: read.result?.value }).toEqual({ state: 'completed', generation: 2, result: 'third run' })
  })
})
