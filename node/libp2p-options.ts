import { noise } from '@chainsafe/libp2p-noise'
import { bootstrap } from '@libp2p/bootstrap'
import { StrictNoSign, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, removePublicAddressesMapper } from '@libp2p/kad-dht'
import { memory } from '@libp2p/memory'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { windowUpdatesAtHalfOnEveryStream } from './window-updates.js'
import { tunedEncrypter } from './transport-tuning.js'
import type { GossipTuning } from './gossip-tuning.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { ComponentLogger, ConnectionGater, PrivateKey } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { Libp2pOptions } from 'libp2p'

/** Which addresses the DHT keeps for the peers it learns of. */
export type AddressScope = 'lan' | 'all'

export interface Libp2pAssembly {
  privateKey: PrivateKey
  mesh: string
  listen: string[]
  bootstrap: string[]
  swarmKey?: Uint8Array
  addressScope: AddressScope
  connectionGater?: ConnectionGater
  connectionMonitor: boolean
  /** how often the connection monitor pings each connection */
  pingIntervalMs: number
  maxConnections: number
  /** undefined: libp2p's own */
  dialTimeoutMs?: number
  maxParallelDials?: number
  maxIncomingPendingConnections?: number
  /** added to every frame on the memory transport (the simulator's slow links) */
  memoryLatencyMs?: number
  dhtQuerySelfIntervalMs: number
  gossip: GossipTuning
  /** largest gossip message accepted */
  maxGossipBytes: number
  logger?: ComponentLogger
}

export type { GossipTuning } from './gossip-tuning.js'

export type MeshServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
}

/** Loopback peers are all one host: these lift the per-host limits that would starve a local mesh. */
const LOOPBACK_NETS = ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']
const LOOPBACK_IPS = new Set(['127.0.0.1', '::1'])

export function dhtProtocol (mesh: string): string {
  return `/agentmesh/${mesh}/kad/1.0.0`
}

/**
 * The libp2p configuration of a mesh peer. A fresh object each call, as Helia's libp2pDefaults().
 */
export function libp2pOptions (a: Libp2pAssembly): Libp2pOptions<MeshServices> {
  const usesMemory = a.listen.some(addr => addr.startsWith('/memory'))
  const tcpBootstrap = a.bootstrap.filter(addr => !addr.startsWith('/memory'))
  return {
    privateKey: a.privateKey,
    addresses: { listen: a.listen },
    transports: usesMemory ? [tcp(), memory({ latency: a.memoryLatencyMs })] : [tcp()],
    connectionEncrypters: [tunedEncrypter(noise())],
    streamMuxers: [windowUpdatesAtHalfOnEveryStream(yamux())],
    connectionProtector: a.swarmKey === undefined ? undefined : preSharedKey({ psk: a.swarmKey }),
    connectionGater: a.connectionGater,
    connectionManager: {
      maxConnections: a.maxConnections,
      ...(a.dialTimeoutMs === undefined ? {} : { dialTimeout: a.dialTimeoutMs }),
      ...(a.maxParallelDials === undefined ? {} : { maxParallelDials: a.maxParallelDials }),
      ...(a.maxIncomingPendingConnections === undefined ? {} : { maxIncomingPendingConnections: a.maxIncomingPendingConnections }),
      allow: LOOPBACK_NETS
    },
    connectionMonitor: { enabled: a.connectionMonitor, pingInterval: a.pingIntervalMs },
    // bootstrap does not retry and cannot dial /memory: the node's own dialer covers both
    peerDiscovery: tcpBootstrap.length > 0 ? [bootstrap({ list: tcpBootstrap })] : [],
    logger: a.logger,
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: dhtProtocol(a.mesh),
        clientMode: false,
        allowQueryWithZeroPeers: true,
        peerInfoMapper: usesMemory || a.addressScope === 'all' ? passthroughMapper : removePublicAddressesMapper,
        querySelfInterval: a.dhtQuerySelfIntervalMs
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        // messages carry our own signed envelope (protocols/gossip/envelope.ts), so that a bad
        // signature reaches our validator and is counted; gossipsub's ids are then content hashes
        globalSignaturePolicy: StrictNoSign,
        maxInboundDataLength: a.maxGossipBytes,
        heartbeatInterval: a.gossip.heartbeatMs ?? 1_000,
        floodPublish: a.gossip.floodPublish ?? true,
        ...(a.gossip.degree === undefined ? {} : meshDegree(a.gossip.degree)),
        ...(a.gossip.lazyDegree === undefined ? {} : { Dlazy: a.gossip.lazyDegree }),
        ...(a.gossip.lazyFactor === undefined ? {} : { gossipFactor: a.gossip.lazyFactor }),
        ...(a.gossip.idontwantMinBytes === undefined ? {} : { idontwantMinDataSize: a.gossip.idontwantMinBytes }),
        scoreParams: { IPColocationFactorWhitelist: LOOPBACK_IPS }
      })
    }
  }
}

/** Gossipsub's mesh bounds around a degree D, in the proportions of its defaults (6, 4..12). */
function meshDegree (D: number): { D: number, Dlo: number, Dhi: number, Dout: number, Dscore: number } {
  const Dlo = Math.max(1, Math.ceil(D * 2 / 3))
  // Dout must stay below Dlo and at most D/2, Dscore at most Dhi
  return { D, Dlo, Dhi: D * 2, Dout: Math.min(Dlo - 1, Math.floor(D / 3)), Dscore: Dlo }
}
