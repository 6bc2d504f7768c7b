import { describe, expect, it } from 'vitest'
import { ApiServer } from '../../node/api/server.js'
import { StoreFailedError } from '../../node/errors.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'

describe('an answer that is a bug', () => {
  const f = useMeshFixture()

  it('is a 500, counted as api.internalErrors and told to onInternalError (the daemon\'s operator log), once', async () => {
    const net = await f.mesh(1, { tasks: { ...FAST_TASKS, agents: [] } })
    const told: string[] = []
    const api = await ApiServer.listen(net.nodes[0]!, {
      port: 0,
      routes: [{ method: 'GET', path: '/v1/boom', handle: () => { throw new TypeError('boom') } }],
      onInternalError: (err, what) => { told.push(`${what}: ${(err as Error).message}`) }
    })
    try {
      const base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`
      const res = await fetch(`${base}/v1/boom`)
      expect(res.status).toBe(500)
      expect((await res.json()).error).toMatchObject({ name: 'INTERNAL', message: 'boom' })
      // a client's mistake is not a bug: not told
      expect((await fetch(`${base}/v1/tasks/zz`)).status).toBe(400)
      expect(told).toEqual(['GET /v1/boom: boom'])
      const metrics = await (await fetch(`${base}/v1/metrics`)).json()
      expect(metrics.api.internalErrors).toBe(1)
    } finally {
      await api.close()
    }
  })

  it('is not a store that failed a write (a full disk): 503 STORE_FAILED with Retry-After, counted apart', async () => {
    const net = await f.mesh(1, { tasks: { ...FAST_TASKS, agents: [], retryAfterMs: 3_000 } })
    const told: string[] = []
    const api = await ApiServer.listen(net.nodes[0]!, {
      port: 0,
      routes: [{ method: 'POST', path: '/v1/write', handle: () => { throw new StoreFailedError('the store at /x failed a write (IO error: No space left on device)') } }],
      onInternalError: (err, what) => { told.push(`${what}: ${(err as Error).message}`) }
    })
    try {
      const base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`
      const res = await fetch(`${base}/v1/write`, { method: 'POST' })
      expect(res.status).toBe(503)
      expect(res.headers.get('retry-after')).toBe('3')
      expect((await res.json()).error).toMatchObject({ name: 'STORE_FAILED', message: expect.stringMatching(/No space left on device/) })
      expect(told).toEqual([])
      const metrics = await (await fetch(`${base}/v1/metrics`)).json()
      expect(metrics.api).toMatchObject({ internalErrors: 0, storeFailed: 1 })
    } finally {
      await api.close()
    }
  })
})
