import { z } from 'zod'

/* zod only: the daemon's config schema, which client commands load too, reads it without the network stack */

/**
 * Gossipsub's knobs that matter at scale, settable in a daemon's config file (`gossip`). Its
 * defaults (D=6, flood publishing) suit a few dozen machines; the simulator runs dozens of nodes
 * on two cores and lowers them (see sim/runner.ts).
 */
export const gossipTuningSchema = z.object({
  /** @default 1_000 (gossipsub's own) */
  heartbeatMs: z.number().int().min(100).max(60_000).optional(),
  /** send our own messages to every subscribed peer, not only the mesh. @default true */
  floodPublish: z.boolean().optional(),
  /** mesh degree: the peers each message is forwarded to. @default 6 */
  degree: z.number().int().min(1).max(32).optional(),
  /** peers told of recent message ids at each heartbeat, at least. @default 6 */
  lazyDegree: z.number().int().min(0).max(64).optional(),
  /** the share of the other subscribed peers told of them, when more than lazyDegree. @default 0.25 */
  lazyFactor: z.number().min(0).max(1).optional(),
  /**
   * On receiving a message at least this big, tell the mesh peers not to send it too (IDONTWANT):
   * one more frame per mesh peer. @default 512 (gossipsub's own)
   */
  idontwantMinBytes: z.number().int().min(0).optional()
}).strict()

export type GossipTuning = z.infer<typeof gossipTuningSchema>
