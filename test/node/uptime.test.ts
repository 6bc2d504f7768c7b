import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiServer } from '../../node/api/server.js'
import { createTestnet } from '../../sim/testnet.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

describe('a node\'s uptime', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  let api: ApiServer | undefined
  afterEach(async () => { vi.restoreAllMocks(); await api?.close(); await net?.stop(); api = undefined; net = undefined })

  it('counts by the monotonic clock: GET /v1/health never says a negative uptime after the wall clock is set back', async () => {
    net = await createTestnet(1, { baseDir: await tmp() })
    const node = net.nodes[0]!
    api = await ApiServer.listen(node, { port: 0 })
    // the wall clock set back an hour (an NTP step), as an outside trial saw: uptimeMs was -3667367
    const wall = Date.now
    vi.spyOn(Date, 'now').mockImplementation(() => wall() - 3_600_000)
    const health = await (await fetch(`${api.url}/v1/health`)).json()
    expect(health.uptimeMs).toBeGreaterThanOrEqual(0)
    expect(health.uptimeMs).toBeLessThan(600_000)
  })
})
