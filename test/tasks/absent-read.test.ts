import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet } from '../../sim/testnet.js'

/** `b`'s reads of task copies (records get) from `a` get no answer until their timeout; its other requests are answered. */
function silenceReads (a: AgentNode, b: AgentNode): () => void {
  const records = a.tasks!.components.records
  a.tasks!.components.records = async (peer, req, o) => {
    if (req.op !== 'get' || peer.toString() !== b.peerId.toString()) return records(peer, req, o)
    return new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('no answer in time')) }, o?.timeoutMs ?? a.tasks!.options.rpcTimeoutMs))
  }
  return () => { a.tasks!.components.records = records }
}

describe('reads of a task while a member is paused or this node is cut off', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('a submit with an idempotency key, its retry, a bulk submit\'s keyed entries, and a read of an unknown id answer without the paused member\'s timeout', async () => {
    // requests time out after 10 s: a lookup that waited for the paused member took that long
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, rpcTimeoutMs: 10_000, agents: [echoAgent] } })
    await net.ready()
    const [a, , c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const restore = silenceReads(a, c)
    try {
      let started = performance.now()
      const first = await a.tasks!.service.submit({ capability: 'echo', input: 'keyed', idempotencyKey: 'paused-member' })
      expect(first.created).toBe(true)
      expect(performance.now() - started).toBeLessThan(5_000)
      expect((await a.tasks!.service.waitFor(first.id, 10_000)).record.final?.state).toBe('completed')
      started = performance.now()
      const retry = await a.tasks!.service.submit({ capability: 'echo', input: 'keyed', idempotencyKey: 'paused-member' })
      expect(retry).toMatchObject({ id: first.id, created: false })
      expect(performance.now() - started).toBeLessThan(5_000)
      // a bulk submit's keyed entries, new and retried, look up the same way
      started = performance.now()
      const bulk = await a.tasks!.service.submitMany([{ capability: 'echo', input: 'keyed', idempotencyKey: 'paused-member' }, { capability: 'echo', input: 'bulk', idempotencyKey: 'paused-member-bulk' }])
      expect(bulk).toMatchObject([{ id: first.id, created: false }, { created: true }])
      expect(performance.now() - started).toBeLessThan(5_000)
      started = performance.now()
      await expect(a.tasks!.service.get('0'.repeat(64))).rejects.toMatchObject({ name: 'TaskNotFoundError' })
      expect(performance.now() - started).toBeLessThan(5_000)
    } finally {
      restore()
    }
  })

  it('a node cut off from the placement answers a read of an unfinished task with its own copy marked unconfirmed; a majority\'s read is not', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, rpcTimeoutMs: 1_000 } })
    await net.ready()
    const [a, b, c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const { id } = await a.tasks!.service.submit({ capability: 'nobody.runs', input: 'queued' })
    await waitFor(async () => (await c.tasks!.replica.get(id)).record !== undefined, { what: 'c to hold its copy' })
    expect((await a.tasks!.service.get(id)).unconfirmed).toBeUndefined()
    // c's requests to a and b fail: c is cut off, the others are not
    const records = c.tasks!.components.records
    c.tasks!.components.records = async (peer, req, o) => peer.equals(c.peerId) ? records(peer, req, o) : await Promise.reject(new Error('cut off'))
    try {
      const view = await c.tasks!.service.get(id)
      expect(view.record.task.id).toBe(id)
      expect(view.unconfirmed).toBe(true)
      expect((await b.tasks!.service.get(id)).unconfirmed).toBeUndefined()
    } finally {
      c.tasks!.components.records = records
    }
    expect((await c.tasks!.service.get(id)).unconfirmed).toBeUndefined()
  })
})
