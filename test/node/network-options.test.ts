import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { waitFor } from '../../sim/wait.js'
import { expectFileRefused, startBare } from '../helpers/config-files.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Daemon } from '../../node/daemon/daemon.js'

describe('the network options (network)', () => {
  const tmp = useTmpDirs()

  it('are refused by name when out of range, misspelt, misplaced or out of order', async () => {
    const dir = await tmp()
    await expectFileRefused(dir, 'zero.json', { network: { maxConnections: 0 } }, /network\.maxConnections/)
    await expectFileRefused(dir, 'typo.json', { network: { maxConection: 5 } }, /maxConection/)
    await expectFileRefused(dir, 'top.json', { knownPeers: 5 }, /"knownPeers" is a network option: put it under "network"/)
    await expectFileRefused(dir, 'order.json', { network: { bootstrapRetryBaseMs: 20_000 } }, /network: bootstrapRetryBaseMs 20000 is above bootstrapRetryMaxMs 10000/)
    await expectFileRefused(dir, 'delays.json', { network: { dhtLookupDelaysMs: [-1] } }, /network\.dhtLookupDelaysMs\.0/)
    await expectFileRefused(dir, 'scope.json', { network: { addressScope: 'wan' } }, /network\.addressScope/)
    await expectFileRefused(dir, 'target.json', { network: { targetPeers: 100, maxConnections: 10 } }, /network: targetPeers 100 is above maxConnections 10: a node can never reach it/)
  })

  it('reach the node: its connection limit, and how many peers it remembers', async () => {
    const dir = await tmp()
    await writeFile(join(dir, 'ok.json'), JSON.stringify({ network: { addressScope: 'all', dialTimeoutMs: 3_000, maxParallelDials: 5, maxIncomingPendingConnections: 4, maxConnections: 7, knownPeers: 1, bootstrapRetryBaseMs: 100, bootstrapRetryMaxMs: 1_000, dhtLookupDelaysMs: [60_000] } }))
    const daemons: Daemon[] = []
    const remembered = async (d: Daemon): Promise<string[]> => {
      const saved = await d.node.store.getBytes('known-peers')
      return saved === undefined ? [] : Object.keys(JSON.parse(new TextDecoder().decode(saved)))
    }
    try {
      const tuned = await startBare(dir, 'a', 'ok.json')
      daemons.push(tuned)
      const [b, c] = [await startBare(dir, 'b'), await startBare(dir, 'c')]
      daemons.push(b, c)
      const limitOf = (d: Daemon): unknown => (d.node.libp2p as unknown as { components: { connectionManager: { maxConnections: number } } }).components.connectionManager.maxConnections
      expect([limitOf(tuned), limitOf(b)]).toEqual([7, 64])
      const dialsOf = (d: Daemon): unknown[] => {
        const manager = (d.node.libp2p as unknown as { components: { connectionManager: { maxIncomingPendingConnections: number, dialQueue: { dialTimeout: number, queue: { concurrency: number } } } } }).components.connectionManager
        return [manager.dialQueue.dialTimeout, manager.dialQueue.queue.concurrency, manager.maxIncomingPendingConnections]
      }
      expect([dialsOf(tuned), dialsOf(b)]).toEqual([[3_000, 5, 4], [10_000, 100, 10]])
      // the DHT keeps every address, where a LAN's mesh keeps only private and loopback ones
      const mapperOf = (d: Daemon): unknown => (d.node.libp2p.services.dht as unknown as { peerInfoMapper: { name: string } }).peerInfoMapper.name
      expect([mapperOf(tuned), mapperOf(b)]).toEqual(['passthroughMapper', 'removePublicAddressesMapper'])
      // one peer remembered at most: the one identified last
      await tuned.node.libp2p.dial(b.node.libp2p.getMultiaddrs())
      await waitFor(async () => (await remembered(tuned)).includes(b.node.peerId.toString()), { timeoutMs: 15_000, what: 'the first peer remembered' })
      await tuned.node.libp2p.dial(c.node.libp2p.getMultiaddrs())
      await waitFor(async () => (await remembered(tuned)).includes(c.node.peerId.toString()), { timeoutMs: 15_000, what: 'the second peer remembered' })
      expect(await remembered(tuned)).toEqual([c.node.peerId.toString()])
      // the default remembers both of its peers
      await waitFor(async () => (await remembered(b)).includes(tuned.node.peerId.toString()), { timeoutMs: 15_000, what: 'b remembering a' })
      await b.node.libp2p.dial(c.node.libp2p.getMultiaddrs())
      await waitFor(async () => (await remembered(b)).length === 2, { timeoutMs: 15_000, what: 'b remembering a and c' })
    } finally {
      for (const d of daemons) await d.stop()
    }
  })
})

describe('the stop timeout (stopTimeoutMs)', () => {
  const tmp = useTmpDirs()

  it('bounds the API\'s close grace: more grace than the stop leaves is refused, unless the stop is longer', async () => {
    const dir = await tmp()
    await expectFileRefused(dir, 'grace.json', { http: { closeGraceMs: 4_500 } }, /http\.closeGraceMs: 4500, at most 4000: a stop that takes over stopTimeoutMs \(5000 ms\)/)
    await expectFileRefused(dir, 'short.json', { stopTimeoutMs: 3_000, http: { closeGraceMs: 2_500 } }, /http\.closeGraceMs: 2500, at most 2000/)
    // the grace's default counts too
    await expectFileRefused(dir, 'default.json', { stopTimeoutMs: 3_000 }, /^stopTimeoutMs: 3000 leaves 2000 ms for http\.closeGraceMs \(3000 by default\) and a second for the rest of the stop: give http\.closeGraceMs at most 2000, or stopTimeoutMs at least 4000$/)
    await expectFileRefused(dir, 'tiny.json', { stopTimeoutMs: 500 }, /stopTimeoutMs/)
    await writeFile(join(dir, 'long.json'), JSON.stringify({ stopTimeoutMs: 10_000, http: { closeGraceMs: 4_500 } }))
    const config = await resolveDaemonConfig({ config: join(dir, 'long.json') }, {})
    expect([config.stopTimeoutMs, config.http?.closeGraceMs]).toEqual([10_000, 4_500])
  })
})
