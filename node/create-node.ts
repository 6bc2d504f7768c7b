import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import { AddressInUseError, DataDirError, InvalidConfigError } from './errors.js'
import { checkMeshOf, loadOrCreateIdentity } from './identity.js'
import { libp2pOptions } from './libp2p-options.js'
import { DEFAULT_TARGET_PEERS, MeshJoiner, parseMultiaddrs } from './mesh-joiner.js'
import { DEFAULT_MAX_CONNECTIONS } from './network-options.js'
import { KnownPeers } from './known-peers.js'
import { meshLogger } from './mesh-logger.js'
import { Store } from './store/store.js'
import { makeDirs } from './store/make-dirs.js'
import { DEFAULT_MAX_INPUT_BYTES, ENVELOPE_OVERHEAD_BYTES } from '../protocols/gossip/index.js'
import { TaskLayer } from './tasks/task-layer.js'
import { DEFAULT_MESH, MESH_NAME } from './mesh-name.js'
import type { TaskLayerInit } from './tasks/options.js'
import type { AddressScope, GossipTuning, MeshServices } from './libp2p-options.js'
import type { StoreFigures } from './store/store.js'
import type { ComponentLogger, ConnectionGater, Libp2p, Logger, PeerId, PrivateKey } from '@libp2p/interface'

export { DEFAULT_MESH, MESH_NAME } from './mesh-name.js'

/** AgentNodeInit.pingIntervalMs's default: a paused or cut-off peer's connection is closed within this and a ping's timeout (5 s or more). */
export const DEFAULT_PING_INTERVAL_MS = 30_000

export interface AgentNodeInit {
  /** directory holding the store (and with it the node key); made if missing */
  dataDir: string
  /**
   * libp2p listen multiaddrs; a /memory/<name> address adds the memory transport.
   * @default ['/ip4/127.0.0.1/tcp/0']
   */
  listen?: string[]
  /** multiaddrs (with /p2p/<id>) of any mesh members to join through */
  bootstrap?: string[]
  /**
   * Mesh name: part of every topic and of the DHT protocol, so meshes never mix.
   * @default 'default'
   */
  mesh?: string
  /** the swarm key file (see swarm-key.ts): only peers with the same key can connect */
  swarmKey?: Uint8Array
  /**
   * 'lan' keeps private and loopback addresses in the DHT (a LAN or one machine); 'all' keeps every
   * address, for a mesh across the internet.
   * @default 'lan'
   */
  addressScope?: AddressScope
  /** composed in by the simulator and tests to cut links (partitions) */
  connectionGater?: ConnectionGater
  /**
   * libp2p's connection monitor pings every connection; at 50+ nodes in one process it dominates
   * idle CPU, so the simulator turns it off.
   * @default true
   */
  connectionMonitor?: boolean
  /**
   * How often the connection monitor pings each connection, closing one that does not answer within
   * libp2p's ping timeout (5 s or more: a peer paused or cut off; a crashed process's connections
   * close at once). Each ping opens a stream at both ends: at libp2p's 10 s they were a fifth of an
   * idle 10-daemon mesh's CPU. Nothing of the mesh's own waits on it: presence expiry and leases
   * find a silent peer.
   * @default 30_000
   */
  pingIntervalMs?: number
  /** @default 64 */
  maxConnections?: number
  /** libp2p's. @default 10_000 */
  dialTimeoutMs?: number
  /** libp2p's. @default 100 */
  maxParallelDials?: number
  /** libp2p's. @default 10 */
  maxIncomingPendingConnections?: number
  /** latency added on the memory transport, for the simulator. @default 0 */
  memoryLatencyMs?: number
  /** at most maxConnections (a larger one is lowered to it). @default min(32, maxConnections) */
  targetPeers?: number
  /** delays of the DHT self-lookups after joining (see MeshJoiner). @default [1_000, 5_000, 20_000] */
  dhtLookupDelaysMs?: number[]
  /** @default 300_000 */
  dhtLookupIntervalMs?: number
  /** @default 250 */
  bootstrapRetryBaseMs?: number
  /** @default 10_000 */
  bootstrapRetryMaxMs?: number
  /** @default 300_000 (kad-dht's own default) */
  dhtQuerySelfIntervalMs?: number
  /** how long one DHT self-lookup may run (see MeshJoiner). @default 10_000 */
  dhtLookupTimeoutMs?: number
  /** how long a bootstrap round waits for a remembered address (see MeshJoiner). @default 2_000 */
  rememberedDialMs?: number
  /** peers whose addresses the store remembers (see KnownPeers). @default 64 */
  knownPeers?: number
  /** gossipsub's heartbeat, mesh degree and flood publishing; its own defaults when not given */
  gossip?: GossipTuning
  /** told each time no bootstrap peer answered (the daemon's operator log) */
  onBootstrapUnreachable?: (failure: { attempt: number, addrs: string[], reasons: string[] }) => void
  /** a record in the store could not be decoded (it is counted and skipped): the daemon tells its operator log */
  onCorruptRecord?: (message: string) => void
  /** prefixes every log line of this node, so one node of many can be isolated */
  logPrefix?: string
  /** the task layer's agents, timers and limits; false for a bare peer */
  tasks?: TaskLayerInit | false
}

export interface NodeInfo {
  peerId: string
  addrs: string[]
  mesh: string
  store: StoreFigures
}

/**
 * A mesh peer: a libp2p host and its store. Later layers (tasks, leases, replication) attach to it.
 */
export class AgentNode {
  readonly libp2p: Libp2p<MeshServices>
  readonly store: Store
  readonly mesh: string
  readonly dataDir: string
  readonly logger: ComponentLogger
  /** by the monotonic clock: an uptime read from the wall clock went negative when it was set back */
  private readonly startedMono = performance.now()
  /** how long since the node was made, in ms, whatever the wall clock did meanwhile */
  uptimeMs (): number { return Math.round(performance.now() - this.startedMono) }
  /** undefined on a bare peer (tasks: false) */
  readonly tasks?: TaskLayer
  private readonly joiner: MeshJoiner
  private readonly known: KnownPeers
  private readonly log: Logger
  private stopped = false

  constructor (libp2p: Libp2p<MeshServices>, store: Store, init: Required<Pick<AgentNodeInit, 'dataDir' | 'mesh'>> & AgentNodeInit, logger: ComponentLogger, privateKey: PrivateKey, known: KnownPeers) {
    this.libp2p = libp2p
    this.store = store
    this.mesh = init.mesh
    this.dataDir = init.dataDir
    this.logger = logger
    this.log = logger.forComponent('agentmesh:node')
    this.known = known
    this.joiner = new MeshJoiner(libp2p, {
      bootstrap: parseMultiaddrs(init.bootstrap ?? []),
      remembered: () => known.addrs(libp2p.peerId.toString()),
      retryBaseMs: init.bootstrapRetryBaseMs,
      retryMaxMs: init.bootstrapRetryMaxMs,
      // a limit below the default target lowers the target: connections past the limit are pruned
      targetPeers: Math.min(init.targetPeers ?? DEFAULT_TARGET_PEERS, init.maxConnections ?? DEFAULT_MAX_CONNECTIONS),
      lookupDelaysMs: init.dhtLookupDelaysMs,
      lookupIntervalMs: init.dhtLookupIntervalMs,
      lookupTimeoutMs: init.dhtLookupTimeoutMs,
      rememberedDialMs: init.rememberedDialMs,
      log: logger.forComponent('agentmesh:join'),
      onUnreachable: init.onBootstrapUnreachable
    })
    if (init.tasks !== false) this.tasks = new TaskLayer({ libp2p, store, mesh: init.mesh, logger, privateKey }, init.tasks ?? {})
  }

  get peerId (): PeerId {
    return this.libp2p.peerId
  }

  /** Full listen multiaddrs, each ending in /p2p/<id>. */
  addrs (): string[] {
    return this.libp2p.getMultiaddrs().map(ma => ma.toString())
  }

  async info (): Promise<NodeInfo> {
    return { peerId: this.peerId.toString(), addrs: this.addrs(), mesh: this.mesh, store: await this.store.figures() }
  }

  /** Called by createAgentNode once libp2p is listening. */
  async startServices (): Promise<void> {
    await this.tasks?.start()
    this.known.follow(this.libp2p)
    this.joiner.start()
    this.log('started %p on %s', this.peerId, this.addrs().join(' '))
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.joiner.stop()
    this.known.unfollow(this.libp2p)
    await this.tasks?.stop()
    await this.libp2p.stop()
    await this.known.flush()
    await this.store.close()
  }
}

/**
 * Assembles and starts a mesh peer. The daemon, the simulator and the tests all build nodes here;
 * faults come in through the options (a connection gater), never through branches inside.
 */
export async function createAgentNode (init: AgentNodeInit): Promise<AgentNode> {
  const mesh = init.mesh ?? DEFAULT_MESH
  if (!MESH_NAME.test(mesh)) throw new InvalidConfigError(`invalid mesh name "${mesh}": use letters, digits, . _ -`)
  // setInterval would take 0, a negative or NaN as 1 ms: every connection pinged a thousand times a second
  if (init.pingIntervalMs !== undefined && !(Number.isSafeInteger(init.pingIntervalMs) && init.pingIntervalMs >= 1)) throw new InvalidConfigError(`pingIntervalMs must be a positive whole number of ms, got ${init.pingIntervalMs}`)
  const logger = meshLogger(init.logPrefix)
  await makeDirs(init.dataDir).catch((err: NodeJS.ErrnoException) => {
    throw new DataDirError(`cannot use data dir ${init.dataDir}: ${err.code ?? err.message}${err.code === 'EEXIST' || err.code === 'ENOTDIR' ? ' (a file is in the way)' : ''}`, { cause: err })
  })
  const storePath = join(init.dataDir, 'store')
  const store = await Store.open({ path: storePath, log: logger.forComponent('agentmesh:store'), onCorrupt: init.onCorruptRecord })
  try {
    const privateKey = await loadOrCreateIdentity(store, storePath)
    await checkMeshOf(store, mesh, init.dataDir)
    const listen = init.listen ?? ['/ip4/127.0.0.1/tcp/0']
    const libp2p = await createLibp2p(libp2pOptions({
      privateKey,
      mesh,
      listen,
      bootstrap: init.bootstrap ?? [],
      swarmKey: init.swarmKey,
      addressScope: init.addressScope ?? 'lan',
      connectionGater: init.connectionGater,
      connectionMonitor: init.connectionMonitor ?? true,
      pingIntervalMs: init.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      dialTimeoutMs: init.dialTimeoutMs,
      maxParallelDials: init.maxParallelDials,
      maxIncomingPendingConnections: init.maxIncomingPendingConnections,
      memoryLatencyMs: init.memoryLatencyMs,
      dhtQuerySelfIntervalMs: init.dhtQuerySelfIntervalMs ?? 300_000,
      gossip: init.gossip ?? {},
      // twice the largest valid message (an input plus the envelope): an oversized message then
      // reaches our validator, which rejects and counts it, instead of gossipsub's frame decoder
      // dropping the whole stream
      maxGossipBytes: 2 * ((init.tasks === false ? DEFAULT_MAX_INPUT_BYTES : init.tasks?.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES) + ENVELOPE_OVERHEAD_BYTES),
      logger
    })).catch((err: any) => { throw mapListenError(err, listen) })
    const node = new AgentNode(libp2p, store, { ...init, mesh }, logger, privateKey, await KnownPeers.load(store, logger.forComponent('agentmesh:join'), init.knownPeers))
    try {
      await node.startServices()
    } catch (err) {
      await node.stop()
      throw err
    }
    return node
  } catch (err) {
    await store.close()
    throw err
  }
}

function mapListenError (err: any, listen: string[]): Error {
  const text = `${err?.message ?? ''} ${err?.cause?.message ?? ''}`
  if (/EADDRINUSE/.test(text)) return new AddressInUseError(`cannot listen on ${listen.join(', ')}: address already in use`)
  if (err?.name === 'UnsupportedListenAddressesError' || /failed to be listened on/.test(text)) {
    const reason = /(E[A-Z]+)/.exec(text)?.[1] ?? 'unsupported address'
    return new AddressInUseError(`cannot listen on ${listen.join(', ')}: ${reason}`)
  }
  return err
}
