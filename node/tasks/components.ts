import type { LeaseClient } from '../../protocols/lease/index.js'
import type { MeshGossip } from '../../protocols/gossip/index.js'
import type { PresenceService } from '../../protocols/presence/index.js'
import type { RecordsRequest } from '../../protocols/records/index.js'
import type { PeersHeard, RpcRequestOptions } from '../../protocols/rpc/index.js'
import type { Replica } from '../../protocols/replica/index.js'
import type { AgentRuntime } from '../runtime/runtime.js'
import type { Store } from '../store/store.js'
import type { TaskEvents } from './events.js'
import type { Membership } from './placement.js'
import type { ReplicaSets } from './replica-sets.js'
import type { TaskLayerOptions } from './options.js'
import type { Logger, PeerId } from '@libp2p/interface'
import type { MemoryLayer } from '../memory/memory-layer.js'

/** Everything the task layer's parts share: one bag, built once in task-layer.ts. */
export interface TaskComponents {
  peerId: PeerId
  store: Store
  replica: Replica
  gossip: MeshGossip
  presence: PresenceService
  replicaSets: ReplicaSets
  membership: Membership
  memory: MemoryLayer
  leases: LeaseClient
  /** a records request to one peer (the local replica directly) */
  records: (peer: PeerId, req: RecordsRequest, options?: RpcRequestOptions) => Promise<any>
  /** when each peer was last heard from on the lease and records protocols */
  heard: PeersHeard
  runtime: AgentRuntime
  options: TaskLayerOptions
  logger: (component: string) => Logger
  /** what happened to tasks here, for log lines and metrics */
  events: TaskEvents
}
