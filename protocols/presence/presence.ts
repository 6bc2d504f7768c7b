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
  private readonly onPresence = (evt: CustomEvent<Presence>): void => {
    const p = evt.detail
    if (p.from === this.c.peerId.toString()) return
    const isNew = !this.peers.has(p.from)
    this.peers.set(p.from, { presence: p, lastSeen: Date.now() })
    if (isNew) {
      this.announceSoon()
      this.learn(p)
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (evt.detail.subscriptions.some(s => s.subscribe && s.topic === this.c.presenceTopic)) this.announceSoon()
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

  /** Announce now-ish: capabilities or free slots changed, or someone new arrived. */
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
      if (now - lastSeen > presence.intervalMs * (this.init.expiryIntervals ?? 3)) continue
      out.push({ peerId, version: presence.version, capabilities: presence.capabilities, freeSlots: presence.freeSlots, lastSeen, self: false })
    }
    return out
  }

  isLive (peerId: string): boolean {
    return this.live().some(p => p.peerId === peerId)
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
      if (now - lastSeen > presence.intervalMs * (this.init.expiryIntervals ?? 3) * 10) this.peers.delete(id)
    }
    this.timer = setTimeout(() => { void this.tick() }, this.intervalMs)
  }

  private async announce (): Promise<void> {
    if (!this.running) return
    await this.c.gossip.publishPresence({
      version: this.init.version,
      intervalMs: this.intervalMs,
      capabilities: this.init.capabilities(),
      freeSlots: this.init.freeSlots(),
      addrs: this.c.addresses().slice(0, 16).map(a => a.toString())
    })
  }
}
