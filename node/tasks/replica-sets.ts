import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { RecentCache } from '../../protocols/replica/index.js'
import type { PresenceService } from '../../protocols/presence/index.js'
import type { PeerId } from '@libp2p/interface'

export interface ReplicaSetsInit {
  /**
   * Peer ids whose parsed form and Kademlia key are cached; the least recently used go first, so a
   * node that sees peers come and go for months does not keep every id it ever ranked.
   * @default 1_024
   */
  maxCachedPeers?: number
}

/** @default 1_024: presence bounds its view at the same size */
export const DEFAULT_MAX_CACHED_PEERS = 1_024

/**
 * The replica set of a task: the R live peers closest to the task's key in Kademlia's XOR space
 * (the keys are SHA-256 of the peer id and of the task id, as kad-dht's), or every live peer when
 * there are fewer than R. Ranked locally over the presence view instead of by a DHT query per task:
 * a query costs ~60 ms here and the view already lists the live mesh.
 */
export class ReplicaSets {
  private readonly presence: PresenceService
  private readonly r: number
  private readonly kadIds: RecentCache<Buffer>
  private readonly peerIds: RecentCache<PeerId>
  /** replica sets for the current view; dropped whenever the set of live peers changes */
  private cache = new Map<string, PeerId[]>()
  private cachedView = ''

  constructor (presence: PresenceService, replicationFactor: number, init: ReplicaSetsInit = {}) {
    this.presence = presence
    this.r = replicationFactor
    const max = init.maxCachedPeers ?? DEFAULT_MAX_CACHED_PEERS
    this.kadIds = new RecentCache(max)
    this.peerIds = new RecentCache(max)
  }

  /** Peer ids cached, for tests: never more than `maxCachedPeers` of each kind. */
  get cachedPeers (): { kadIds: number, peerIds: number } {
    return { kadIds: this.kadIds.size, peerIds: this.peerIds.size }
  }

  get replicationFactor (): number {
    return this.r
  }

  for (taskId: string): PeerId[] {
    const live = this.presence.liveIds()
    const view = live.sort().join(',')
    if (view !== this.cachedView) {
      this.cache = new Map()
      this.cachedView = view
    }
    let set = this.cache.get(taskId)
    if (set === undefined) {
      // a steady view would otherwise keep every task id ever asked about
      if (this.cache.size >= 10_000) this.cache.clear()
      const target = createHash('sha256').update(Buffer.from(taskId, 'hex')).digest()
      set = this.order(target, live).slice(0, this.r).map(id => this.peerId(id))
      this.cache.set(taskId, set)
    }
    return set
  }

  /** `peers` by XOR distance of their Kademlia ids to `key`, nearest first. */
  order (key: Buffer, peers: string[]): string[] {
    const ranked = peers.map(id => ({ id, d: xor(this.kadId(id), key) }))
    ranked.sort((a, b) => Buffer.compare(a.d, b.d))
    return ranked.map(p => p.id)
  }

  /** Whether `peer` is in the task's replica set. */
  includes (taskId: string, peer: string): boolean {
    return this.for(taskId).some(p => p.toString() === peer)
  }

  /** The peer's Kademlia id: the sha256 of its multihash. */
  kadId (peerId: string): Buffer {
    let id = this.kadIds.get(peerId)
    if (id === undefined) {
      id = createHash('sha256').update(this.peerId(peerId).toMultihash().bytes).digest()
      this.kadIds.set(peerId, id)
    }
    return id
  }

  peerId (id: string): PeerId {
    let p = this.peerIds.get(id)
    if (p === undefined) {
      p = peerIdFromString(id)
      this.peerIds.set(id, p)
    }
    return p
  }
}

/** Bytewise XOR: the Kademlia distance between two ids. */
export function xor (a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length)
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number)
  return out
}
