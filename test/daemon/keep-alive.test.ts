import http from 'node:http'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { ApiServer } from '../../node/api/server.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'

/** The Keep-Alive header of one answer on a kept-alive connection: what a client's pool goes by. */
async function keepAliveHeader (port: number): Promise<string | undefined> {
  const agent = new http.Agent({ keepAlive: true })
  try {
    return await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/v1/node', agent }, res => {
        res.resume()
        res.on('end', () => { resolve(res.headers['keep-alive'] as string | undefined) })
      }).on('error', reject)
    })
  } finally {
    agent.destroy()
  }
}

describe('kept-alive API connections', () => {
  const f = useMeshFixture()

  it('stay open 72 s idle by default (Node\'s 5 s raced clients\' reuse), and keepAliveMs sets it', async () => {
    const net = await f.mesh(1, { tasks: { ...FAST_TASKS, agents: [] } })
    const node = net.nodes[0]!
    const byDefault = await ApiServer.listen(node, { port: 0 })
    const set = await ApiServer.listen(node, { port: 0, keepAliveMs: 30_000 })
    try {
      expect(await keepAliveHeader((byDefault.server.address() as { port: number }).port)).toBe('timeout=72')
      expect(await keepAliveHeader((set.server.address() as { port: number }).port)).toBe('timeout=30')
    } finally {
      await byDefault.close()
      await set.close()
    }
  })

  it('answer 408 to a body that takes longer than requestTimeoutMs to arrive (Node waited 300 s), and a long poll is not cut', async () => {
    const net = await f.mesh(1, { tasks: { ...FAST_TASKS, agents: [] } })
    const api = await ApiServer.listen(net.nodes[0]!, { port: 0, requestTimeoutMs: 1_000 })
    const port = (api.server.address() as { port: number }).port
    try {
      const before = { ...api.stats, badRequests: { ...api.stats.badRequests } }
      const started = Date.now()
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          // a body of 100 bytes of which one ever comes
          socket.write('POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
        })
        let got = ''
        socket.on('data', d => { got += String(d) })
        socket.on('close', () => { resolve(got) })
        socket.on('error', reject)
      })
      expect(answer).toMatch(/^HTTP\/1\.1 408/)
      expect(Date.now() - started).toBeLessThan(15_000)
      // a wait whose request arrived whole is not a slow request, however long its answer takes
      const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'nobody-runs-this', input: 1 })
      const asked = Date.now()
      const res = await fetch(`http://127.0.0.1:${port}/v1/tasks/${id}/result?wait=2500`)
      expect(res.status).toBe(202)
      expect(Date.now() - asked).toBeGreaterThanOrEqual(2_000)
      // the 408 is one error answer, and no client gone: it was counted as none, and as two gone
      expect(api.stats.errors - before.errors).toBe(1)
      expect(api.stats.clientsGone - before.clientsGone).toBe(0)
      expect(api.stats.badRequests.timeout - before.badRequests.timeout).toBe(1)
    } finally {
      await api.close()
    }
  })

  it('count a client that leaves a long poll once, as gone and as an error, and one that closes an event stream as neither', async () => {
    const net = await f.mesh(1, { tasks: { ...FAST_TASKS, agents: [] } })
    const api = await ApiServer.listen(net.nodes[0]!, { port: 0 })
    const base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`
    try {
      const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'nobody-runs-this', input: 1 })
      const before = { ...api.stats }
      // a long poll and a submit's wait, left by their clients; an event stream closed after its first bytes
      const left = async (path: string, init: RequestInit = {}): Promise<void> => {
        await expect(fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(300) })).rejects.toMatchObject({ name: 'TimeoutError' })
      }
      await left(`/v1/tasks/${id}/result?wait=1500`)
      await left('/v1/tasks?wait=1500', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'nobody-runs-this', input: 2 }) })
      const stream = new AbortController()
      const events = await fetch(`${base}/v1/tasks/${id}/events`, { signal: stream.signal })
      await events.body!.getReader().read()
      stream.abort()
      // a wait as long as the two left: once it is answered, theirs have ended too
      expect((await fetch(`${base}/v1/tasks/${id}/result?wait=1500`)).status).toBe(202)
      expect(api.stats.clientsGone - before.clientsGone).toBe(2)
      // before, neither was an error, though api.errors is said to count every client gone
      expect(api.stats.errors - before.errors).toBe(2)
    } finally {
      await api.close()
    }
  })
})
