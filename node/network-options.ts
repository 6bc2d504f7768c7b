import { z } from 'zod'
import { optionalTimerMs as ms } from './tasks/options.js'

/* schemas only (zod, and the task options' timer bound): the daemon's config schema, which client commands load too, reads it without the network stack */

/** MeshJoiner's retryMaxMs, unless told otherwise. */
export const DEFAULT_BOOTSTRAP_RETRY_MAX_MS = 10_000
/** createAgentNode's maxConnections, unless told otherwise. */
export const DEFAULT_MAX_CONNECTIONS = 64


/**
 * How a node finds and keeps its peers, settable in a daemon's config file (`network`). Each key
 * is createAgentNode's option of the same name, which has its default; the defaults suit a mesh
 * of up to a few dozen machines.
 */
export const networkFields = z.object({
  /**
   * Which addresses the DHT keeps and hands out: 'lan' the private and loopback ones (a LAN, one
   * machine), 'all' every one, for a mesh across the internet. @default 'lan'
   */
  addressScope: z.enum(['lan', 'all']).optional(),
  /** connections libp2p keeps; past it, it prunes the least useful. @default 64 */
  maxConnections: z.number().int().min(1).max(10_000).optional(),
  /** how long one dial of a peer may take (libp2p's dialTimeout). @default 10_000 */
  dialTimeoutMs: ms(100, 600_000),
  /** dials under way at once (libp2p's maxParallelDials). @default 100 */
  maxParallelDials: z.number().int().min(1).max(10_000).optional(),
  /** inbound connections still in their handshake at once; more are refused (libp2p's maxIncomingPendingConnections). @default 10 */
  maxIncomingPendingConnections: z.number().int().min(1).max(10_000).optional(),
  /** dial the peers the DHT finds while below this many connections. @default 32 */
  targetPeers: z.number().int().min(0).max(10_000).optional(),
  /** peers whose addresses the store remembers, dialed again after a restart. @default 64 */
  knownPeers: z.number().int().min(0).max(10_000).optional(),
  /** the first wait before dialing the bootstrap list again while no bootstrap peer answers; doubled each round. @default 250 */
  bootstrapRetryBaseMs: ms(10, 600_000),
  /** the longest wait between those rounds, and how often a node that reaches a bootstrap peer checks it still does. @default 10_000 */
  bootstrapRetryMaxMs: ms(1_000, 3_600_000),
  /** how long a round waits for a remembered address before going on. @default 2_000 */
  rememberedDialMs: ms(100, 600_000),
  /** delays of the DHT self-lookups after joining. @default [1_000, 5_000, 20_000] */
  dhtLookupDelaysMs: z.array(z.number().int().min(0).max(3_600_000)).max(16).optional(),
  /** the period of the DHT self-lookups after those. @default 300_000 */
  dhtLookupIntervalMs: ms(1_000, 86_400_000),
  /** how long one DHT self-lookup may run. @default 10_000 */
  dhtLookupTimeoutMs: ms(100, 600_000),
  /** kad-dht's own self-query period. @default 300_000 */
  dhtQuerySelfIntervalMs: ms(1_000, 86_400_000)
}).strict()

/** The same, with the bootstrap waits in order and a target of peers the connection limit allows. */
export const networkOptionsSchema = networkFields.superRefine((o, ctx) => {
  const retryMax = o.bootstrapRetryMaxMs ?? DEFAULT_BOOTSTRAP_RETRY_MAX_MS
  if ((o.bootstrapRetryBaseMs ?? 0) > retryMax) ctx.addIssue({ code: 'custom', message: `bootstrapRetryBaseMs ${String(o.bootstrapRetryBaseMs)} is above bootstrapRetryMaxMs ${retryMax}: the first wait cannot be longer than the longest` })
  // (a maxConnections below the default target alone lowers the target to it: createAgentNode)
  const max = o.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  if ((o.targetPeers ?? 0) > max) ctx.addIssue({ code: 'custom', message: `targetPeers ${String(o.targetPeers)} is above maxConnections ${max}: a node can never reach it` })
})

export type NetworkOptions = z.infer<typeof networkOptionsSchema>
