import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { PartitionController } from '../../sim/faults.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { taskId } from '../../protocols/task/index.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet } from '../../sim/testnet.js'

/*
 * A submit refused for want of a majority, retried with its idempotency key: the retry must not
 * answer that the task exists while no majority of its placement holds it. It did (200 with the
 * id), from the copy the refused submit had left on the submitter, and the task never ran.
 */
describe('a refused submit retried with its idempotency key', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  /** Four nodes whose links a partition can cut; `a`, the first, submits. */
  async function fourNodes (): Promise<{ partition: PartitionController, mesh: Testnet, a: AgentNode, me: string }> {
    const partition = new PartitionController()
    net = await createTestnet(4, {
      baseDir: await tmp(),
      tasks: { ...FAST_TASKS, antiEntropyIntervalMs: 60_000, agents: [echoAgent] },
      perNode: i => ({ connectionGater: partition.gater(() => net?.nodes[i]?.peerId.toString()) })
    })
    await net.ready()
    const a = net.nodes[0]!
    return { partition, mesh: net, a, me: a.peerId.toString() }
  }

  /** Cuts `a` off from the others, until it sees only itself. */
  async function isolate (partition: PartitionController, a: AgentNode): Promise<void> {
    await partition.split([[a], net!.nodes.slice(1)])
    await waitFor(() => a.tasks!.presence.live().length === 1, { what: 'the submitter to see only itself', timeoutMs: 10_000 })
  }

  it('without a key leaves no copy outside its placement; with one, a cancel no member can hold forgets the copy', async () => {
    const { partition, mesh, a, me } = await fourNodes()
    await isolate(partition, a)
    // a placement leaves this node out a quarter of the time: 40 submits all but surely have some
    for (let i = 0; i < 40; i++) {
      await expect(a.tasks!.service.submit({ capability: 'echo', input: `keyless-${i}` })).rejects.toHaveProperty('name', 'QuorumUnavailableError')
    }
    // a copy outside the placement was all that was left of such a submit: listed pending for ever,
    // and no retry could name it
    const held = await a.tasks!.service.list({ limit: 100 })
    expect(held.filter(r => !r.placement.members.includes(me)).map(r => r.task.input)).toEqual([])

    // with a key, the refused submit's copy pins the placement of its retry; a cancel once every
    // member answers that it holds no such task forgets it (it was 503 for ever)
    const key = Array.from({ length: 64 }, (_, i) => `forget-${i}`).find(k => !a.tasks!.membership.choose(taskId({ capability: 'echo', input: k, submitter: me, idempotencyKey: k })).members.includes(me))!
    const id = taskId({ capability: 'echo', input: key, submitter: me, idempotencyKey: key })
    await expect(a.tasks!.service.submit({ capability: 'echo', input: key, idempotencyKey: key })).rejects.toHaveProperty('name', 'QuorumUnavailableError')
    expect((await a.tasks!.replica.get(id)).record).toBeDefined()
    await expect(a.tasks!.service.cancel(id)).rejects.toHaveProperty('name', 'QuorumUnavailableError')
    partition.heal()
    await mesh.ready(20_000)
    await waitFor(() => a.tasks!.presence.live().length === 4, { what: 'the submitter to see the mesh again', timeoutMs: 20_000 })
    const gone = await a.tasks!.service.cancel(id).catch((err: Error) => err)
    expect(gone).toMatchObject({ name: 'TaskNotFoundError', message: expect.stringContaining('no member of its placement holds it') })
    expect((await a.tasks!.replica.get(id)).record).toBeUndefined()
    await expect(a.tasks!.service.get(id)).rejects.toHaveProperty('name', 'TaskNotFoundError')
  })

  it('is refused again while no majority can store it, and stored and run once one can', async () => {
    const { partition, mesh, a, me } = await fourNodes()
    // keys whose placement leaves this node out (a cache copy here), and some whose placement has it
    const keyed = (key: string): { key: string, id: string } => ({ key, id: taskId({ capability: 'echo', input: key, submitter: me, idempotencyKey: key }) })
    const member = (k: { id: string }): boolean => a.tasks!.membership.choose(k.id).members.includes(me)
    const keys = Array.from({ length: 64 }, (_, i) => keyed(`retry-${i}`))
    const outside = keys.find(k => !member(k))!
    const inside = keys.filter(member)
    expect(outside).toBeDefined()
    expect(inside.length).toBeGreaterThan(1)
    const submit = async (k: { key: string }): Promise<{ id: string, created: boolean }> => a.tasks!.service.submit({ capability: 'echo', input: k.key, idempotencyKey: k.key })

    await isolate(partition, a)
    for (const k of [outside, inside[0]!]) {
      await expect(submit(k)).rejects.toHaveProperty('name', 'QuorumUnavailableError')
      await expect(submit(k)).rejects.toHaveProperty('name', 'QuorumUnavailableError')
    }
    // the refused submit's copy is kept: it pins the placement the retry stores the task on
    expect((await a.tasks!.replica.get(outside.id)).record?.placement).toEqual(a.tasks!.membership.choose(outside.id))
    // and a bulk retry of a key refused before is refused in its entry
    const bulk = await a.tasks!.service.submitMany([{ capability: 'echo', input: inside[1]!.key, idempotencyKey: inside[1]!.key }])
    expect(bulk[0]).toHaveProperty('error.name', 'QuorumUnavailableError')
    const bulkAgain = await a.tasks!.service.submitMany([{ capability: 'echo', input: inside[1]!.key, idempotencyKey: inside[1]!.key }])
    expect(bulkAgain[0]).toHaveProperty('error.name', 'QuorumUnavailableError')

    partition.heal()
    await mesh.ready(20_000)
    await waitFor(() => a.tasks!.presence.live().length === 4, { what: 'the submitter to see the mesh again', timeoutMs: 20_000 })
    // each is stored on its pinned placement now, from the copy the refused submit left here
    expect(await submit(outside)).toMatchObject({ id: outside.id, created: false })
    expect(await submit(inside[0]!)).toMatchObject({ id: inside[0]!.id, created: false })
    const [again] = await a.tasks!.service.submitMany([{ capability: 'echo', input: inside[1]!.key, idempotencyKey: inside[1]!.key }])
    expect(again).toMatchObject({ id: inside[1]!.id, created: false })
    for (const k of [outside, inside[0]!, inside[1]!]) {
      expect((await a.tasks!.service.waitFor(k.id, 30_000)).record.final?.state).toBe('completed')
      const holders = (mesh.nodes as AgentNode[]).filter(n => a.tasks!.membership.choose(k.id).members.includes(n.peerId.toString()))
      await waitFor(async () => (await Promise.all(holders.map(async n => (await n.tasks!.replica.get(k.id)).result?.value))).every(v => v === k.key), { what: 'every member holding the result' })
    }
  })
})
