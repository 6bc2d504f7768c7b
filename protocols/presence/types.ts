import type { CapabilityInfo, MeshGossip } from '../gossip/index.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface PresenceInit {
  /**
   * How often this node announces itself.
   * @default 5_000 (the task layer passes its presenceIntervalMs)
   */
  intervalMs?: number
  /**
   * A peer silent for this many of its own intervals drops out of the view (the part of the
   * silence in this process's latest stall aside: see lastStall).
   * @default 3
   */
  expiryIntervals?: number
  /**
   * A peer's declared interval is clamped to [ours / ratio, ours × ratio] before its expiry is
   * computed from it, and each value outside is counted (`stats.intervalsClamped`): a peer
   * declaring a huge interval would otherwise stay live for ever after it went silent, and one
   * declaring a tiny interval would drop out between its own announcements.
   * @default 4
   */
  intervalRatio?: number
  /**
   * The most peers kept, live or not; past it the peer heard from least recently is forgotten
   * (`stats.peersEvicted`), so a stream of fresh peer ids cannot grow the view without bound.
   * @default 1_024
   */
  maxPeers?: number
  /**
   * A peer silent for this many of its expiry periods is forgotten (`stats.peersForgotten`).
   * @default 10
   */
  forgetAfterExpiries?: number
  /** the clock peers' last-seen times are read by (tests pass their own). @default Date.now */
  now?: () => number
  /**
   * This process's latest event-loop stall: its length and how long ago it ended, in ms (the task
   * layer passes the lag monitor's). The part of a peer's silence that fell in it is not counted
   * against the peer while the stall ended less than one of our expiry periods ago: the peer's
   * announcements sat unread in our sockets, and a live peer is heard again by then. Without this,
   * a node that stalled past its peers' expiry saw every peer gone, ranked itself first for every
   * task and kept a copy of each, so the overload that stalled it added work. A peer that died
   * drops out at most one stall later. Earlier stalls are not counted: what came during them was read.
   * @default () => undefined
   */
  lastStall?: () => LastStall | undefined
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
  /**
   * The least time between two early announcements of a capability going full or free; a flip
   * within it rides on the announcement at its end.
   * @default 1_000
   */
  earlyGapMs?: number
  version: string
  capabilities: () => CapabilityInfo[]
  freeSlots: () => Record<string, number>
  /** called with a peer's farewell, or when its connections all close, before it leaves the live view: the last look at it as live (membership folds it in) */
  onLeaving?: (peerId: string) => void
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

export interface PresenceStats {
  /** announcements whose declared interval was outside the trusted range, and clamped */
  intervalsClamped: number
  /** peers dropped because the view was full */
  peersEvicted: number
  /** peers dropped after a long silence */
  peersForgotten: number
  /** peers dropped at once because they said they were stopping */
  farewells: number
  /** live peers taken out of the view because every connection to them closed, until heard again */
  peersCut: number
  /** this node's own announcements that failed to go out (the next one may) */
  announceFailures: number
}

export interface PeerPresence {
  peerId: string
  version: string
  capabilities: CapabilityInfo[]
  freeSlots: Record<string, number>
  lastSeen: number
  self: boolean
}

/** A stall of this process's event loop: how long it lasted and how long ago it ended (0: it lasts still), in ms. */
export interface LastStall {
  lengthMs: number
  endedAgoMs: number
}
