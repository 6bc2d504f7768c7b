import { describe, expect, it } from 'vitest'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'

describe('the mesh joiner\'s DHT self-lookups', () => {
  const tmp = useTmpDirs()

  it('run the DHT\'s query alone, not a lookup of every peer it finds again', async () => {
    // no early lookups, then one every 300 ms: each counted below once the spies are in place
    const net = await createTestnet(3, { topology: 'chain', baseDir: await tmp(), dhtLookupDelaysMs: [], dhtLookupIntervalMs: 300 })
    try {
      await net.waitForFullMesh()
      const lookups = net.nodes.map(() => 0)
      const findPeers = net.nodes.map(() => 0)
      net.nodes.forEach((node, i) => {
        const dht = node.libp2p.services.dht
        const query = dht.getClosestPeers.bind(dht)
        dht.getClosestPeers = (key, options) => { lookups[i] = (lookups[i] ?? 0) + 1; return query(key, options) }
        const routing = node.libp2p.peerRouting
        const findPeer = routing.findPeer.bind(routing)
        routing.findPeer = async (id, options) => { findPeers[i] = (findPeers[i] ?? 0) + 1; return await findPeer(id, options) }
      })
      // two lookups each, so that one ran whole after the spies were set
      await waitFor(() => lookups.every(n => n >= 2), { what: 'two self-lookups on every node', timeoutMs: 20_000 })
      // a peer found by the query is discovered from the response that named it; before, libp2p
      // looked each one up again, a full DHT query a peer
      expect(findPeers).toEqual([0, 0, 0])
    } finally {
      await net.stop()
    }
  })
})
