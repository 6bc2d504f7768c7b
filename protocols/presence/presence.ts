import type { CapabilityInfo, MeshGossip, Presence } from '../gossip/index.js'
import type { GossipSub } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface PresenceInit {
  /**
   * How often this node announces itself.
   * @default 2_000
   */
  intervalMs?: number
  /**
   * A peer silent for this many of its own intervals drops out of the view.
   * @default 3
   */
  expiryIntervals?: number
  /**
   * Capability descriptions and input schemas ride on every this-many announcements (and on the
   * first, on a change, and when a newcomer appears); the others carry names only, so the message
   * every peer checks every interval stays small.
   * @default 10
   */
  catalogEvery?: number
  /**
   * How many peers, on average, greet a newcomer with an early announcement. Each peer does so with
   * probability welcomers / live peers: with every peer answering, each join cost n² messages.
   * @default 3
   */
  welcomers?: number
  version: string
  capabilities: () => CapabilityInfo[]
  freeSlots: () => Record<string, number>
}

export interface PresenceComponents {
  gossip: MeshGossip
  pubsub: GossipSub
  peerId: PeerId
  /** this node's own listen addresses, announced with its presence */
  addresses: () => Multiaddr[]
  /** learns where a peer listens (libp2p's peer store) */
  learnAddresses: (peer: PeerId, addrs: Multiaddr[]) => Promise<void>
  presenceTopic: string
  log: Logger
}

export interface PeerPresence {
  peerId: string
  version: string
  capabilities: CapabilityInfo[]
  freeSlots: Record<string, number>
  lastSeen: number
  self: boolean
}

/**
 * Who is live and what they offer. A peer is live while its announcements keep coming; a newly
 * subscribed peer gets our announcement at once instead of after a full interval.
 */
export class PresenceService {
  private readonly c: PresenceComponents
  private readonly init: PresenceInit
  private readonly peers = new Map<string, { presence: Presence, lastSeen: number }>()
  private timer?: ReturnType<typeof setTimeout>
  private soon?: ReturnType<typeof setTimeout>
  private running = false
  private announced = 0
  private lastCatalog = ''
  private catalogDue = false
  /** which capabilities had a free slot in our last announcement */
  private lastAvailability = ''
  private readonly onPresence = (evt: CustomEvent<Presence>): void => {
    const p = evt.detail
    if (p.from === this.c.peerId.toString()) return
    const known = this.peers.get(p.from)
    this.peers.set(p.from, { presence: { ...p, capabilities: withKnownInfo(p.capabilities, known?.presence.capabilities) }, lastSeen: Date.now() })
    if (known === undefined) {
      this.welcome()
      this.learn(p)
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (evt.detail.subscriptions.some(s => s.subscribe && s.topic === this.c.presenceTopic)) this.welcome()
  }

  constructor (components: PresenceComponents, init: PresenceInit) {
    this.c = components
    this.init = init
  }

  get intervalMs (): number {
    return this.init.intervalMs ?? 2_000
  }

  start (): void {
    this.running = true
    this.c.gossip.addEventListener('presence', this.onPresence)
    this.c.pubsub.addEventListener('subscription-change', this.onSubscriptionChange as EventListener)
    void this.tick()
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    clearTimeout(this.soon)
    this.c.gossip.removeEventListener('presence', this.onPresence)
    this.c.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange as EventListener)
  }

  /** A newcomer learns of us early from a few peers, and of the rest within one interval. */
  private welcome (): void {
    if (Math.random() * this.peers.size >= (this.init.welcomers ?? 3)) return
    this.catalogDue = true
    this.announceSoon()
  }

  /**
   * A slot was taken or freed. Peers rank claimers among those with a free slot, so only a
   * capability going full or free again is worth an early announcement; the counts ride on the
   * next regular one (a flood per task start and end was most of the gossip under load).
   */
  slotsChanged (): void {
    if (availability(this.init.freeSlots()) !== this.lastAvailability) this.announceSoon()
  }

  /** Announce now-ish: capabilities or someone new arrived. */
  announceSoon (delayMs = 50): void {
    if (!this.running || this.soon !== undefined) return
    this.soon = setTimeout(() => {
      this.soon = undefined
      void this.announce()
    }, delayMs)
  }

  /** Live peers, this node included. */
  live (): PeerPresence[] {
    const now = Date.now()
    const out: PeerPresence[] = [{
      peerId: this.c.peerId.toString(),
      version: this.init.version,
      capabilities: this.init.capabilities(),
      freeSlots: this.init.freeSlots(),
      lastSeen: now,
      self: true
    }]
    for (const [peerId, { presence, lastSeen }] of this.peers) {
      if (now - lastSeen > this.expiryMs(presence)) continue
      out.push({ peerId, version: presence.version, capabilities: presence.capabilities, freeSlots: presence.freeSlots, lastSeen, self: false })
    }
    return out
  }

  /** Ids of the live peers, this node first: live() without building each peer's view. */
  liveIds (): string[] {
    const now = Date.now()
    const out = [this.c.peerId.toString()]
    for (const [peerId, { presence, lastSeen }] of this.peers) {
      if (now - lastSeen <= this.expiryMs(presence)) out.push(peerId)
    }
    return out
  }

  /** How long a peer may stay silent before it drops out of the view: a few of its own intervals. */
  private expiryMs (p: Presence): number {
    return p.intervalMs * (this.init.expiryIntervals ?? 3)
  }

  isLive (peerId: string): boolean {
    return this.liveIds().includes(peerId)
  }

  /** Forget a peer at once (it disconnected and said goodbye, or a test cut it off). */
  forget (peerId: string): void {
    this.peers.delete(peerId)
  }

  private learn (p: Presence): void {
    try {
      // the envelope was signed by p.from, so these are the addresses that peer itself announced
      const addrs = p.addrs.map(a => multiaddr(a))
      this.c.learnAddresses(peerIdFromString(p.from), addrs).catch(err => { this.c.log('cannot store addresses of %s: %s', p.from, err.message) })
    } catch (err: any) {
      this.c.log('bad addresses from %s: %s', p.from, err.message)
    }
  }

  private async tick (): Promise<void> {
    if (!this.running) return
    await this.announce()
    // expired peers are dropped from the map too, so it does not grow with churn
    const now = Date.now()
    for (const [id, { presence, lastSeen }] of this.peers) {
      if (now - lastSeen > this.expiryMs(presence) * 10) this.peers.delete(id)
    }
    this.timer = setTimeout(() => { void this.tick() }, this.intervalMs)
  }

  private async announce (): Promise<void> {
    if (!this.running) return
    const capabilities = this.init.capabilities()
    const catalog = JSON.stringify(capabilities)
    const full = this.catalogDue || catalog !== this.lastCatalog || this.announced % (this.init.catalogEvery ?? 10) === 0
    this.announced++
    this.catalogDue = false
    this.lastCatalog = catalog
    const freeSlots = this.init.freeSlots()
    this.lastAvailability = availability(freeSlots)
    await this.c.gossip.publishPresence({
      version: this.init.version,
      intervalMs: this.intervalMs,
      capabilities: full ? capabilities : capabilities.map(c => ({ name: c.name })),
      freeSlots,
      addrs: this.c.addresses().slice(0, 16).map(a => a.toString())
    })
  }
}

/** A names-only announcement keeps what the peer told us of each capability before. */
function withKnownInfo (announced: CapabilityInfo[], known: CapabilityInfo[] | undefined): CapabilityInfo[] {
  if (known === undefined) return announced
  return announced.map(cap => cap.description !== undefined || cap.inputSchema !== undefined ? cap : (known.find(k => k.name === cap.name) ?? cap))
}

function availability (freeSlots: Record<string, number>): string {
  return Object.keys(freeSlots).filter(name => (freeSlots[name] ?? 0) > 0).sort().join(',')
}
