import { noise } from '@chainsafe/libp2p-noise'
import { StrictNoSign, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p } from '@libp2p/interface'

/**
 * A bare libp2p peer that speaks the mesh's wire protocols but runs none of agentmesh: the
 * stand-in for a buggy or hostile peer.
 */
export async function createRawPeer (): Promise<Libp2p<{ pubsub: GossipSub, identify: ReturnType<ReturnType<typeof identify>> }>> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({ globalSignaturePolicy: StrictNoSign, allowPublishToZeroTopicPeers: true, maxInboundDataLength: 8 * 1024 * 1024 })
    }
  }) as any
}
