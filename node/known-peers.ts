import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Store } from './store/store.js'
import type { Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const KNOWN_PEERS_KEY = 'known-peers'
/** Peers remembered at most, unless told otherwise: the most recently identified are kept (a node keeps 64 connections). */
export const DEFAULT_KNOWN_PEERS = 64
const MAX_ADDRS_PER_PEER = 8

/**
 * The listen addresses of the peers this node has met, kept in its store. A restarted node dials
 * them beside its bootstrap list: a bootstrap address goes stale when that peer restarts on another
 * port (`tcp/0`), and a node that knew only it stayed cut off from members still where they were.
 */
export class KnownPeers {
  /** peer id -> its listen addresses (without /p2p), oldest identified first */
  private readonly peers: Map<string, string[]>
  private readonly store: Store
  private readonly log: Logger
  private readonly max: number
  private saving: Promise<void> = Promise.resolve()
  private dirty = false
  /** what addrs() last gave, until the remembered peers change */
  private parsed?: { self: string, addrs: Multiaddr[] }
  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, listenAddrs: Multiaddr[] }>): void => {
    this.note(evt.detail.peerId.toString(), evt.detail.listenAddrs.map(a => a.toString()))
  }

  private constructor (store: Store, peers: Map<string, string[]>, log: Logger, max: number) {
    this.store = store
    this.peers = peers
    this.log = log
    this.max = max
  }

  /** What the store remembers, the last `max` of it; a record that cannot be read is dropped (they are hints), and logged. */
  static async load (store: Store, log: Logger, max = DEFAULT_KNOWN_PEERS): Promise<KnownPeers> {
    const peers = new Map<string, string[]>()
    try {
      const saved = await store.getBytes(KNOWN_PEERS_KEY)
      const parsed: unknown = saved === undefined ? {} : JSON.parse(new TextDecoder().decode(saved))
      const entries = Object.entries(parsed as Record<string, unknown>)
      for (const [id, addrs] of entries.slice(Math.max(0, entries.length - max))) {
        if (!Array.isArray(addrs) || !isPeerId(id)) continue
        peers.set(id, addrs.filter((a): a is string => typeof a === 'string').slice(0, MAX_ADDRS_PER_PEER))
      }
    } catch (err: any) {
      log('known peers unreadable, starting without them: %s', err?.message)
    }
    return new KnownPeers(store, peers, log, max)
  }

  /** Every remembered address, with its peer's id; ones that do not parse are skipped. */
  addrs (self: string): Multiaddr[] {
    // parsed once per change: the joiner asks at each of its rounds and each disconnect
    if (this.parsed?.self === self) return this.parsed.addrs
    const out: Multiaddr[] = []
    for (const [id, addrs] of this.peers) {
      if (id === self) continue
      for (const a of addrs) {
        try {
          out.push(multiaddr(`${a}/p2p/${id}`))
        } catch {}
      }
    }
    this.parsed = { self, addrs: out }
    return out
  }

  /** Remembers the peers libp2p identifies from now on. */
  follow (libp2p: Pick<Libp2p, 'addEventListener'>): void {
    libp2p.addEventListener('peer:identify', this.onIdentify as EventListener)
  }

  unfollow (libp2p: Pick<Libp2p, 'removeEventListener'>): void {
    libp2p.removeEventListener('peer:identify', this.onIdentify as EventListener)
  }

  note (id: string, addrs: string[]): void {
    const kept = addrs.filter(a => !a.includes('/p2p-circuit')).slice(0, MAX_ADDRS_PER_PEER)
    if (kept.length === 0 || this.max === 0) return
    const known = this.peers.get(id)
    // the last identified go last, kept first; written only when what is known changed
    this.peers.delete(id)
    this.peers.set(id, kept)
    this.parsed = undefined
    if (known !== undefined && known.join(' ') === kept.join(' ')) return
    for (const oldest of this.peers.keys()) {
      if (this.peers.size <= this.max) break
      this.peers.delete(oldest)
    }
    this.save()
  }

  /** Writes what is known, one write at a time: a change made during a write is written after it. */
  private save (): void {
    if (this.dirty) return
    this.dirty = true
    this.saving = this.saving.then(async () => {
      this.dirty = false
      // a hint: not synced (one lost with a crash is noted again at the next identify)
      await this.store.putBytes(KNOWN_PEERS_KEY, new TextEncoder().encode(JSON.stringify(Object.fromEntries(this.peers))), { sync: false })
    }).catch((err: any) => { this.log('known peers not saved: %s', err?.message) })
  }

  /** Resolves once what was noted is written (before the store closes). */
  async flush (): Promise<void> {
    await this.saving
  }
}

function isPeerId (id: string): boolean {
  try {
    peerIdFromString(id)
    return true
  } catch {
    return false
  }
}
