import { afterEach, describe, expect, it } from 'vitest'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { gatedAgent } from '../helpers/gated.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

// a long first poll: a wait that does not wake on a notice shows as a poll
const TASKS = { ...FAST_TASKS, leaseMs: 5_000, claimLagLimitMs: 5_000, waitPollBaseMs: 5_000 }

describe('waits that wake when the task ends, not on a poll', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('on a node that did not submit the task, wake on the notice of the member they asked, with the result', async () => {
    const { agent: gated, open } = gatedAgent('ran')
    net = await createTestnet(5, { baseDir: await tmp(), tasks: { ...TASKS, agents: [gated] } })
    await net.ready()
    const submitter = net.nodes[0]!
    const { id } = await submitter.tasks!.service.submit({ capability: 'gated', input: 'watched' })
    const { record } = await submitter.tasks!.service.get(id)
    // a node that neither submitted the task nor holds it
    const waiter = net.nodes.find(n => n !== submitter && !record.placement.members.includes(n.peerId.toString()))!
    const waiting = waiter.tasks!.service.waitFor(id, 20_000)
    await waitFor(() => net!.nodes.some(n => n.tasks!.remoteWaiters.stats.watched === 1), { what: 'a member to watch the task for the waiter' })
    open()
    const view = await waiting
    expect(view.record.final?.state).toBe('completed')
    expect(view.result?.value).toBe('ran')
    expect(waiter.tasks!.service.stats.waitPolls).toBe(0)
    expect(net.nodes.reduce((n, node) => n + node.tasks!.remoteWaiters.stats.told, 0)).toBe(1)
  })

  it('a member from before watches refuses the field: it is read the plain way, and the wait polls', async () => {
    const { agent: gated, open } = gatedAgent('ran')
    net = await createTestnet(5, { baseDir: await tmp(), tasks: { ...TASKS, waitPollBaseMs: 300, agents: [gated] } })
    await net.ready()
    const submitter = net.nodes[0]!
    const { id } = await submitter.tasks!.service.submit({ capability: 'gated', input: 'older' })
    const { record } = await submitter.tasks!.service.get(id)
    const waiter = net.nodes.find(n => n !== submitter && !record.placement.members.includes(n.peerId.toString()))!
    // the members answer as an older peer's strict schema does
    const c = waiter.tasks!.components
    const records = c.records
    let refused = 0
    let readPlain = 0
    c.records = async (peer, req, o) => {
      if (req.op === 'get' && req.watch === true) {
        refused++
        return { status: 'ERROR', reason: 'bad request: Unrecognized key: "watch"' }
      }
      const answer = await records(peer, req, o)
      if (req.op === 'get' && req.id === id) readPlain++
      return answer
    }
    const waiting = waiter.tasks!.service.waitFor(id, 20_000)
    // the run ends only after the wait's plain read came back: a task already final at that read
    // needs no poll (on a busy machine the read after the refusal came after the run once)
    await waitFor(() => refused > 0 && readPlain > 0, { what: 'the wait\'s watched read refused, and the plain one answered' })
    open()
    const view = await waiting
    expect(view.record.final?.state).toBe('completed')
    expect(view.result?.value).toBe('ran')
    expect(refused).toBeGreaterThan(0)
    expect(waiter.tasks!.service.stats.waitPolls).toBeGreaterThan(0)
  })

  it('forgets the oldest waits past remoteWaitersLimit', async () => {
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...TASKS, remoteWaitersLimit: 2 } })
    await net.ready()
    const w = net.nodes[0]!.tasks!.remoteWaiters
    for (const id of ['a', 'b', 'c']) w.watch(id.repeat(64), 'peer')
    w.watch('c'.repeat(64), 'another')
    expect(w.stats).toEqual({ watched: 4, told: 0, forgotten: 2 })
  })

  it('a wake that comes while the wait reads its copy is kept: the wait reads again at once instead of sleeping to its poll', async () => {
    const { agent: gated, open } = gatedAgent('woken')
    net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...TASKS, waitPollBaseMs: 20_000, waitPollCapMs: 20_000, agents: [gated] } })
    await net.ready()
    const node = net.nodes[0]!
    const { id } = await node.tasks!.service.submit({ capability: 'gated', input: 'x' })
    // the wait's first read answers with the copy as it was, once the task has finished and woken its waiters
    const replica = node.tasks!.replica
    const get = replica.get.bind(replica)
    let slowed = false
    replica.get = async taskId => {
      const before = await get(taskId)
      if (!slowed && taskId === id) {
        slowed = true
        open()
        await waitFor(async () => (await get(id)).record?.final !== undefined, { what: 'the task final while the read is on its way' })
      }
      return before
    }
    const view = await node.tasks!.service.waitFor(id, 5_000)
    expect(view.record.final?.state).toBe('completed')
    expect(view.result?.value).toBe('woken')
    expect(node.tasks!.service.stats.waitPolls).toBe(0)
  })
})
