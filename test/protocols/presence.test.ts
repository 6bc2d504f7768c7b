import { afterEach, describe, expect, it } from 'vitest'
import { loadOrCreateIdentity } from '../../node/identity.js'
import { MeshGossip, presenceTopic } from '../../protocols/gossip/index.js'
import { PresenceService } from '../../protocols/presence/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'
import type { CapabilityInfo, Presence } from '../../protocols/gossip/index.js'
import type { PresenceInit } from '../../protocols/presence/index.js'
import type { Testnet } from '../../sim/testnet.js'

/** Presence by hand on bare peers, so its options and inputs are the test's to set. */
async function presenceOn (node: AgentNode, init: Omit<PresenceInit, 'version'>): Promise<{ presence: PresenceService, gossip: MeshGossip, sent: Presence[] }> {
  const log = node.logger.forComponent('test:presence')
  const { pubsub } = node.libp2p.services
  const privateKey = await loadOrCreateIdentity(node.store)
  const gossip = new MeshGossip({ pubsub, privateKey, peerId: node.peerId, log }, { mesh: node.mesh })
  const sent: Presence[] = []
  const publish = gossip.publishPresence.bind(gossip)
  gossip.publishPresence = async p => { sent.push(p as Presence); await publish(p) }
  const presence = new PresenceService({
    gossip,
    pubsub,
    peerId: node.peerId,
    presenceTopic: presenceTopic(node.mesh),
    addresses: () => node.libp2p.getMultiaddrs(),
    learnAddresses: async () => {},
    log
  }, { version: 'test', ...init })
  gossip.start()
  presence.start()
  return { presence, gossip, sent }
}

describe('presence', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  const running: PresenceService[] = []
  afterEach(async () => {
    for (const p of running.splice(0)) p.stop()
    await net?.stop()
    net = undefined
  })

  it('sends the capability catalog now and then, and peers keep it across names-only announcements', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), tasks: false })
    const [a, b] = net.nodes as [AgentNode, AgentNode]
    const catalog: CapabilityInfo[] = [{ name: 'summarize', description: 'shortens a text', inputSchema: { type: 'string' } }]
    const sa = await presenceOn(a, { intervalMs: 100, catalogEvery: 4, capabilities: () => catalog, freeSlots: () => ({ summarize: 1 }) })
    const sb = await presenceOn(b, { intervalMs: 100, capabilities: () => [], freeSlots: () => ({}) })
    running.push(sa.presence, sb.presence)
    const heard: Presence[] = []
    sb.gossip.addEventListener('presence', evt => { if (evt.detail.from === a.peerId.toString()) heard.push(evt.detail) })
    await waitFor(() => heard.filter(p => p.capabilities[0]?.description === undefined).length >= 12 && heard.some(p => p.capabilities[0]?.description !== undefined), { what: 'full and names-only announcements from a', timeoutMs: 10_000 })
    // most announcements are names only: one in catalogEvery carries the catalog (plus the early ones)
    const full = sa.sent.filter(p => p.capabilities[0]?.description !== undefined).length
    expect(full).toBeLessThan(sa.sent.length / 2)
    // b's view still has the description and schema a announced before
    const seen = sb.presence.live().find(p => p.peerId === a.peerId.toString())
    expect(seen?.capabilities).toEqual(catalog)
  })

  it('announces early when a capability fills up or frees, not on every slot taken', async () => {
    net = await createTestnet(1, { baseDir: await tmp(), tasks: false })
    let free = 3
    const s = await presenceOn(net.nodes[0] as AgentNode, { intervalMs: 60_000, capabilities: () => [{ name: 'echo' }], freeSlots: () => ({ echo: free }) })
    running.push(s.presence)
    await waitFor(() => s.sent.length === 1, { what: 'the first announcement' })
    const early = async (change: () => void): Promise<boolean> => {
      const before = s.sent.length
      change()
      s.presence.slotsChanged()
      await new Promise(resolve => setTimeout(resolve, 200))
      return s.sent.length > before
    }
    expect(await early(() => { free = 2 })).toBe(false)
    expect(await early(() => { free = 1 })).toBe(false)
    expect(await early(() => { free = 0 })).toBe(true)
    expect(s.sent.at(-1)?.freeSlots).toEqual({ echo: 0 })
    expect(await early(() => { free = 0 })).toBe(false)
    expect(await early(() => { free = 1 })).toBe(true)
  })
})
