import http from 'node:http'
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
})
