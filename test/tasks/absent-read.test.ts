import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { ApiServer } from '../../node/api/server.js'
import { traceTask } from '../../node/tasks/trace.js'
import { makeTask, newRecord, taskId } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet } from '../../sim/testnet.js'

/**
 * `node`'s answers on the lease and records protocols wait as `hold` says of each request: so many
 * ms, or 'paused' until the release is called, as a SIGSTOPped member answers nothing. The requests
 * go over the wire, so the asker sees what it would.
 */
function delayAnswers (node: AgentNode, hold: (protocol: 'records' | 'lease', body: any) => number | 'paused'): { release: () => void, held: () => number } {
  const layer = node.tasks as any
  const inits = [layer.recordsRpc.init, layer.leaseRpc.init]
  const handlers = inits.map(init => init.handler)
  const waiting = new Set<() => void>()
  let count = 0
  let released = false
  for (const [i, init] of inits.entries()) {
    init.handler = async (body: any, from: unknown) => {
      const wait = released ? 0 : hold(i === 0 ? 'records' : 'lease', body)
      if (wait !== 0) {
        count++
        await new Promise<void>(resolve => {
          if (wait === 'paused') waiting.add(resolve)
          else setTimeout(resolve, wait)
        })
      }
      return handlers[i](body, from)
    }
  }
  return {
    held: () => count,
    release: () => {
      released = true
      for (const [i, init] of inits.entries()) init.handler = handlers[i]
      for (const resolve of waiting) resolve()
    }
  }
}

describe('reads of a task while a member is paused or this node is cut off', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('a submit with an idempotency key, its retry, a bulk submit\'s keyed entries, and a read of an unknown id wait for a paused member no longer than silentPeerMs, not its RPC timeout', async () => {
    // requests time out after 10 s: a lookup that waited for the paused member took that long
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, rpcTimeoutMs: 10_000, agents: [echoAgent] } })
    await net.ready()
    const [a, , c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const paused = delayAnswers(c, () => 'paused')
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
      expect(paused.held()).toBeGreaterThan(0)
      // found silent: the next reads wait a sixth of silentPeerMs for it, until it is heard from
      expect(a.tasks!.components.heard.isSuspected(c.peerId.toString())).toBe(true)
    } finally {
      paused.release()
    }
    // heard from again: no longer taken as silent
    await a.tasks!.service.submit({ capability: 'echo', input: 'after', idempotencyKey: 'after-the-pause' })
    expect(a.tasks!.components.heard.isSuspected(c.peerId.toString())).toBe(false)
  })

  it('a bulk submit\'s keyed lookups wait for a member found silent once, not a sixth of silentPeerMs each', async () => {
    // a sixth is 500 ms: 96 keys, eight lookups at a time, waited 12 sixths (6 s) for the paused member
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, rpcTimeoutMs: 20_000, silentPeerMs: 3_000, agents: [echoAgent] } })
    await net.ready()
    const [a, , c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const paused = delayAnswers(c, () => 'paused')
    try {
      // found silent by a read of an unknown id
      await expect(a.tasks!.service.get('0'.repeat(64))).rejects.toMatchObject({ name: 'TaskNotFoundError' })
      expect(a.tasks!.components.heard.isSuspected(c.peerId.toString())).toBe(true)
      const started = performance.now()
      const bulk = await a.tasks!.service.submitMany(Array.from({ length: 96 }, (_, i) => ({ capability: 'echo', input: i, idempotencyKey: `bulk-${i}` })))
      expect(bulk.filter(e => 'created' in e && e.created).length).toBe(96)
      expect(performance.now() - started).toBeLessThan(3_000)
    } finally {
      paused.release()
    }
  })

  it('an event stream and a trace of a task do not wait out a paused member: each read skips it once silent, and still shows the outcome', async () => {
    // requests time out after 10 s: a read that waited for the paused member took that long, a stream its every poll
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, rpcTimeoutMs: 10_000, eventsPollMs: 200, agents: [echoAgent] } })
    await net.ready()
    const [a, , c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    const { id } = await a.tasks!.service.submit({ capability: 'echo', input: 'traced' })
    expect((await a.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    await waitFor(async () => (await c.tasks!.replica.get(id)).record?.final !== undefined, { what: 'c to hold the outcome' })
    const api = await ApiServer.listen(a, { port: 0 })
    const paused = delayAnswers(c, () => 'paused')
    try {
      let started = performance.now()
      const trace = await traceTask(a.tasks!.components, a.tasks!.service, id)
      expect(trace.map(t => [t.record.task.id, t.record.final?.state])).toEqual([[id, 'completed']])
      expect(performance.now() - started).toBeLessThan(5_000)
      started = performance.now()
      const res = await fetch(`${api.url}/v1/tasks/${id}/events`, { signal: AbortSignal.timeout(9_000) })
      const text = await res.text()
      expect(res.status).toBe(200)
      expect(text).toContain('event: completed')
      expect(performance.now() - started).toBeLessThan(5_000)
      expect(paused.held()).toBeGreaterThanOrEqual(2)
    } finally {
      paused.release()
      await api.close()
    }
  })

  it('with five members, one paused: a read of an unknown id waits for the live ones and not the paused one\'s RPC timeout', async () => {
    net = await createTestnet(5, { baseDir: await tmp(), tasks: { ...FAST_TASKS, replicationFactor: 5, rpcTimeoutMs: 10_000 } })
    await net.ready()
    const [a, , , , e] = net.nodes as [AgentNode, AgentNode, AgentNode, AgentNode, AgentNode]
    const paused = delayAnswers(e, () => 'paused')
    try {
      const started = performance.now()
      await expect(a.tasks!.service.get('1'.repeat(64))).rejects.toMatchObject({ name: 'TaskNotFoundError' })
      expect(performance.now() - started).toBeLessThan(5_000)
      expect(paused.held()).toBeGreaterThan(0)
    } finally {
      paused.release()
    }
  })

  it('a node cut off from the placement answers a read of an unfinished task with its own copy marked unconfirmed; a majority\'s read is not', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, rpcTimeoutMs: 5_000 } })
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

  it('a new key\'s lookup still waits for a member that is slow, not silent: the copy only it holds is found, and a retry with other options is refused', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, rpcTimeoutMs: 10_000 } })
    await net.ready()
    const [a, , c] = net.nodes as [AgentNode, AgentNode, AgentNode]
    // an earlier submit of the key reached c alone, and a kept no copy (it crashed, say)
    const task = makeTask({ capability: 'nobody.runs', input: 'once', submitter: a.peerId.toString(), idempotencyKey: 'slow-holder', maxAttempts: 1, timeoutMs: 10_000, deadline: Date.now() + 60_000 })
    expect(task.id).toBe(taskId({ capability: 'nobody.runs', input: 'once', submitter: a.peerId.toString(), idempotencyKey: 'slow-holder' }))
    await c.tasks!.replica.put(newRecord(task, a.tasks!.membership.choose(task.id)))
    expect((await a.tasks!.replica.get(task.id)).record).toBeUndefined()
    // c's reads take 300 ms, and another request to it waits 4 s (a member slow at some work): it
    // is slow, not silent
    const slow = delayAnswers(c, (protocol, body) => protocol === 'records' && body?.op === 'get' ? 300 : protocol === 'records' && body?.op === 'children' ? 4_000 : 0)
    try {
      const long = a.tasks!.components.records(c.peerId, { op: 'children', id: task.id })
      await new Promise(resolve => setTimeout(resolve, 1_600))
      expect(await a.tasks!.service.submit({ capability: 'nobody.runs', input: 'once', idempotencyKey: 'slow-holder' })).toMatchObject({ id: task.id, created: false })
      await expect(a.tasks!.service.submit({ capability: 'nobody.runs', input: 'once', idempotencyKey: 'slow-holder', maxAttempts: 5 })).rejects.toMatchObject({ name: 'IdempotencyConflictError' })
      await long
      expect(slow.held()).toBeGreaterThanOrEqual(2)
    } finally {
      slow.release()
    }
  })
})
