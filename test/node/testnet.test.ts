import { describe, expect, it } from 'vitest'
import { dhtProtocol } from '../../node/libp2p-options.js'
import { simNodeTuning } from '../../sim/runner.js'
import { createTestnet } from '../../sim/testnet.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'

describe('createTestnet', () => {
  const tmp = useTmpDirs()

  it.each(['memory', 'tcp'] as const)('joins 5 nodes over %s into a full mesh from one bootstrap node', async transport => {
    const net = await createTestnet(5, { transport, baseDir: await tmp() })
    try {
      await net.waitForFullMesh()
      for (const node of net.nodes) expect(node.libp2p.getPeers()).toHaveLength(4)
    } finally {
      await net.stop()
    }
  })

  it('finds peers it was not told about through the DHT (chain bootstrap)', async () => {
    const net = await createTestnet(4, { transport: 'tcp', topology: 'chain', baseDir: await tmp() })
    try {
      const [first, , , last] = net.nodes
      await net.waitForFullMesh()
      expect(last?.libp2p.getConnections(first?.peerId)).not.toHaveLength(0)
    } finally {
      await net.stop()
    }
  })

  it('runs the DHT under the mesh name, never the public IPFS protocol', async () => {
    const net = await createTestnet(1, { mesh: 'blue', baseDir: await tmp() })
    try {
      const protocols = net.nodes[0]?.libp2p.getProtocols() ?? []
      expect(protocols).toContain(dhtProtocol('blue'))
      expect(protocols.some(p => p.startsWith('/ipfs/kad'))).toBe(false)
    } finally {
      await net.stop()
    }
  })

  it('keeps its peer id across a restart from the same data dir', async () => {
    const baseDir = await tmp()
    const net = await createTestnet(2, { baseDir })
    const before = net.nodes[1]?.peerId.toString()
    await net.stop()
    const again = await createTestnet(2, { baseDir })
    try {
      expect(again.nodes[1]?.peerId.toString()).toBe(before)
    } finally {
      await again.stop()
    }
  })

  it('refuses an invalid mesh name', async () => {
    await expect(createTestnet(1, { mesh: 'no spaces', baseDir: await tmp() })).rejects.toHaveProperty('name', 'InvalidConfigError')
  })

  it("applies the simulator's gossip tuning, and tasks still run under it", { timeout: 240_000 }, async () => {
    const { gossip } = simNodeTuning(50)
    expect(gossip).toBeDefined()
    // ten nodes share a worker with other test files: a 500 ms lease can lapse three times on a busy machine
    // and presence every second, requests of 10 s: ten nodes of one process answer slowly under load
    const net = await createTestnet(10, { gossip, baseDir: await tmp(), tasks: { ...FAST_TASKS, leaseMs: 5_000, presenceIntervalMs: 1_000, rpcTimeoutMs: 10_000 } })
    try {
      await net.ready(60_000)
      const opts = (net.nodes[0]!.libp2p.services.pubsub as unknown as { opts: Record<string, unknown> }).opts
      expect(opts).toMatchObject({ D: 3, Dlo: 2, Dhi: 6, Dlazy: 3, floodPublish: false, gossipFactor: 0, idontwantMinDataSize: 64 * 1024, heartbeatInterval: 3_000 })
      // a sparser mesh still carries announcements and completion notices to everyone
      const s = net.nodes[9]!.tasks!.service
      const { id } = await s.submit({ capability: 'echo', input: 'tuned' })
      const view = await s.waitFor(id, 60_000)
      expect(view.record.final?.state).toBe('completed')
      expect(view.result?.value).toBe('tuned')
    } finally {
      await net.stop()
    }
  })
})
