import { multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_BOOTSTRAP_RETRY_MAX_MS } from './network-options.js'
import type { Libp2p, Logger, PeerInfo } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface MeshJoinerInit {
  /** multiaddrs of any members, each with /p2p/<id> */
  bootstrap: Multiaddr[]
  /** addresses of the peers met before (KnownPeers), read at each round: dialed too while no peer is connected */
  remembered?: () => Multiaddr[]
  /**
   * How long a round waits for a remembered address: one that goes nowhere (a host gone) must
   * not hold the bootstrap retries up for a whole dial timeout.
   * @default 2_000
   */
  rememberedDialMs?: number
  /**
   * First retry delay while no bootstrap peer answers; doubles up to retryMaxMs.
   * @default 250
   */
  retryBaseMs?: number
  /** @default 10_000 */
  retryMaxMs?: number
  /**
   * Dial peers the DHT discovers while below this many connections.
   * @default 32
   */
  targetPeers?: number
  /**
   * Delays of the DHT self-lookups after joining, then the period of the ones after. A lookup
   * right at join can race the bootstrap peer's own, so a few follow early. Each is a full DHT
   * query: with many nodes in one process they dominate CPU, so they are few and skipped once the
   * node has targetPeers connections.
   * @default [1_000, 5_000, 20_000]
   */
  lookupDelaysMs?: number[]
  /** @default 300_000 */
  lookupIntervalMs?: number
  /** @default 10_000 */
  lookupTimeoutMs?: number
  log: Logger
  /** told each time no bootstrap peer answered: the operator's log line */
  onUnreachable?: (failure: { attempt: number, addrs: string[], reasons: string[] }) => void
}

/** What the joiner uses of a node: libp2p, and the DHT's own query. */
type JoinerLibp2p = Libp2p<{ dht: Pick<KadDHT, 'getClosestPeers'> }>

/** MeshJoinerInit.targetPeers's default. */
export const DEFAULT_TARGET_PEERS = 32

/**
 * Keeps a node in the mesh. Libp2p's bootstrap module neither retries nor dials /memory, so this
 * dials the bootstrap list with capped exponential backoff (and jitter, so restarted meshes do
 * not stampede one member) whenever the node is connected to none of them, and dials the peers
 * the DHT discovers, which is how a node that bootstrapped from B comes to know A.
 */
export class MeshJoiner {
  private readonly libp2p: JoinerLibp2p
  private readonly init: MeshJoinerInit
  private timer?: ReturnType<typeof setTimeout>
  private lookupTimer?: ReturnType<typeof setTimeout>
  private lookups = 0
  private failures = 0
  /** failed rounds in a row with no peer connected at all: what the operator's warning counts */
  private lonelyRounds = 0
  private running = false
  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => { this.dialDiscovered(evt.detail) }
  private readonly onDisconnect = (): void => { this.schedule(0) }

  constructor (libp2p: JoinerLibp2p, init: MeshJoinerInit) {
    this.libp2p = libp2p
    this.init = init
  }

  start (): void {
    this.running = true
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.schedule(0)
    this.scheduleLookup()
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    clearTimeout(this.lookupTimer)
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
  }

  private schedule (delayMs: number): void {
    if (!this.running || this.init.bootstrap.length + (this.init.remembered?.().length ?? 0) === 0) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.tick() }, delayMs)
  }

  /**
   * Dials the bootstrap peers unless connected to one of them: a node that lost them (a crash, a
   * partition) keeps trying, with backoff, while it goes on working with whoever it still reaches.
   */
  private async tick (): Promise<void> {
    const base = this.init.retryBaseMs ?? 250
    const cap = this.init.retryMaxMs ?? DEFAULT_BOOTSTRAP_RETRY_MAX_MS
    const connected = this.init.bootstrap.some(addr => {
      const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
      return id !== undefined && this.libp2p.getConnections().some(conn => conn.remotePeer.toString() === id)
    })
    if (connected) {
      this.failures = 0
      this.lonelyRounds = 0
      this.schedule(cap)
      return
    }
    // cut off from everyone: the peers met before are tried too (a bootstrap address may be stale)
    const lonely = this.libp2p.getConnections().length === 0
    if (!lonely) this.lonelyRounds = 0
    const remembered = lonely ? this.init.remembered?.() ?? [] : []
    if (this.init.bootstrap.length + remembered.length === 0) {
      this.schedule(cap)
      return
    }
    const rememberedMs = this.init.rememberedDialMs ?? 2_000
    const dials = [
      ...this.init.bootstrap.map(async addr => this.libp2p.dial(addr)),
      ...remembered.map(async addr => this.libp2p.dial(addr, { signal: AbortSignal.timeout(rememberedMs) }))
    ]
    const results = await Promise.allSettled(dials)
    if (!this.running) return
    if (results.some(r => r.status === 'fulfilled')) {
      this.failures = 0
      this.lonelyRounds = 0
      this.schedule(cap)
      return
    }
    const reasons = results.slice(0, this.init.bootstrap.length).map(r => r.status === 'rejected' ? String(r.reason?.message ?? r.reason) : '')
    this.init.log('no bootstrap peer answered (attempt %d): %s', this.failures + 1, reasons.join('; '))
    // the operator is told only while this node reaches no peer at all: with others connected the
    // mesh works, and a bootstrap peer that restarted or moved is no fault of this node
    if (this.libp2p.getConnections().length > 0) this.lonelyRounds = 0
    else if (this.init.bootstrap.length > 0) {
      this.lonelyRounds++
      this.init.onUnreachable?.({ attempt: this.lonelyRounds, addrs: this.init.bootstrap.map(a => a.toString()), reasons })
    }
    const delay = Math.min(cap, base * 2 ** this.failures)
    this.failures++
    this.schedule(delay / 2 + Math.random() * delay / 2)
  }

  private scheduleLookup (): void {
    if (!this.running) return
    const delays = this.init.lookupDelaysMs ?? [1_000, 5_000, 20_000]
    const delay = delays[this.lookups] ?? this.init.lookupIntervalMs ?? 300_000
    this.lookupTimer = setTimeout(() => {
      this.lookups++
      void this.lookupSelf().finally(() => { this.scheduleLookup() })
    }, delay)
  }

  /** A DHT query for our own key: its responses carry the peers near us, which we then dial. */
  private async lookupSelf (): Promise<void> {
    const connections = this.libp2p.getConnections().length
    if (connections === 0 || connections >= (this.init.targetPeers ?? DEFAULT_TARGET_PEERS)) return
    try {
      const signal = AbortSignal.timeout(this.init.lookupTimeoutMs ?? 10_000)
      // the DHT's own query: libp2p's peerRouting.getClosestPeers also looks up each peer it finds
      // whose entry came without addresses, as the DHT's own always does, with a full query a peer
      // (20 nodes: 400 queries more for 60 lookups); the responses' peers are discovered either way
      for await (const _ of this.libp2p.services.dht.getClosestPeers(this.libp2p.peerId.toMultihash().bytes, { signal })) {
        if (!this.running) return
      }
    } catch (err: any) {
      this.init.log('self lookup failed: %s', err.message)
    }
  }

  private dialDiscovered (peer: PeerInfo): void {
    if (!this.running || peer.id.equals(this.libp2p.peerId)) return
    if (this.libp2p.getConnections().length >= (this.init.targetPeers ?? DEFAULT_TARGET_PEERS)) return
    if (this.libp2p.getConnections(peer.id).length > 0) return
    this.libp2p.dial(peer.id).catch(err => { this.init.log('dial of discovered %p failed: %s', peer.id, err.message) })
  }
}

export function parseMultiaddrs (addrs: string[]): Multiaddr[] {
  return addrs.map(a => multiaddr(a))
}
