import type { Agent } from '../runtime/agent.js'

/** Every timer and limit of the task layer. Tests shrink them; the defaults suit a real mesh. */
export interface TaskLayerInit {
  /** @default all built-in agents */
  agents?: Agent[]
  /** peers per replica set. @default 3 */
  replicationFactor?: number
  /** @default 10_000 */
  leaseMs?: number
  /** @default 1/3 */
  renewFraction?: number
  /** first retry delay after a failed attempt. @default 1_000 */
  backoffBaseMs?: number
  /** @default 60_000 */
  backoffCapMs?: number
  /** @default 3 */
  defaultMaxAttempts?: number
  /** per attempt. @default 60_000 */
  defaultTimeoutMs?: number
  /** a task unclaimed or unfinished this long after submit goes dead. @default 86_400_000 (a day) */
  defaultDeadlineMs?: number
  /** @default 1_048_576 */
  maxInputBytes?: number
  /** @default 1_048_576 */
  maxResultBytes?: number
  /** results up to this ride in completion notices. @default 16_384 */
  maxInlineResultBytes?: number
  /** @default 2_000 */
  presenceIntervalMs?: number
  /** each rank of the rendezvous order waits this much longer before claiming. @default 150 */
  claimStaggerMs?: number
  /** how many of the first-ranked capable peers claim an announced task. @default 3 */
  claimRanks?: number
  /**
   * The first this-many ranked peers keep an announced task in their store, so it is listed there
   * and the pull path finds it; the others drop the announcement without a store read (any node
   * still answers for the task through its replicas). Below this many peers, every peer keeps all.
   * @default 8
   */
  keepRanks?: number
  /**
   * A node whose event loop ran this late in the last second or two takes no new claims: it might
   * not renew them in time. The pull path and re-announcements bring the tasks back later.
   * @default 1_000
   */
  claimLagLimitMs?: number
  /** how often a node asks peers for claimable tasks it has not seen. @default 2_000 */
  pullIntervalMs?: number
  /** peers asked per pull. @default 2 */
  pullPeers?: number
  /** the pull path takes tasks unchanged for this long: younger ones are the announcements' to claim. @default 2_000 */
  pullMinAgeMs?: number
  /** @default 1_000 */
  sweepIntervalMs?: number
  /** first re-announcement of an unclaimed task; doubles up to reannounceCapMs. @default 2_000 */
  reannounceBaseMs?: number
  /** @default 60_000 */
  reannounceCapMs?: number
  /** @default 5_000 */
  rpcTimeoutMs?: number
  /**
   * A wait for a result (`submit --wait`, GET /v1/tasks/:id?wait) wakes on the completion notice,
   * and asks the replicas after this long in case the notice was lost; doubles up to waitPollCapMs.
   * @default 1_000
   */
  waitPollBaseMs?: number
  /** @default 8_000 */
  waitPollCapMs?: number
  /** how often records are compared with the other replicas and handed to moved replica sets. @default 30_000 */
  antiEntropyIntervalMs?: number
  /** completed and canceled records (and dropped dead letters) are deleted this long after they ended. @default 604_800_000 (7 days) */
  retentionMs?: number
  /** fsync writes peers rely on. @default true */
  syncWrites?: boolean
}

export type TaskLayerOptions = Required<Omit<TaskLayerInit, 'agents'>>

export function resolveTaskOptions (init: TaskLayerInit): TaskLayerOptions {
  return {
    replicationFactor: init.replicationFactor ?? 3,
    leaseMs: init.leaseMs ?? 10_000,
    renewFraction: init.renewFraction ?? 1 / 3,
    backoffBaseMs: init.backoffBaseMs ?? 1_000,
    backoffCapMs: init.backoffCapMs ?? 60_000,
    defaultMaxAttempts: init.defaultMaxAttempts ?? 3,
    defaultTimeoutMs: init.defaultTimeoutMs ?? 60_000,
    defaultDeadlineMs: init.defaultDeadlineMs ?? 86_400_000,
    maxInputBytes: init.maxInputBytes ?? 1_048_576,
    maxResultBytes: init.maxResultBytes ?? 1_048_576,
    maxInlineResultBytes: init.maxInlineResultBytes ?? 16_384,
    presenceIntervalMs: init.presenceIntervalMs ?? 2_000,
    claimStaggerMs: init.claimStaggerMs ?? 150,
    claimLagLimitMs: init.claimLagLimitMs ?? 1_000,
    keepRanks: init.keepRanks ?? 8,
    claimRanks: init.claimRanks ?? 3,
    pullIntervalMs: init.pullIntervalMs ?? 2_000,
    pullPeers: init.pullPeers ?? 2,
    pullMinAgeMs: init.pullMinAgeMs ?? 2_000,
    sweepIntervalMs: init.sweepIntervalMs ?? 1_000,
    reannounceBaseMs: init.reannounceBaseMs ?? 2_000,
    reannounceCapMs: init.reannounceCapMs ?? 60_000,
    rpcTimeoutMs: init.rpcTimeoutMs ?? 5_000,
    waitPollBaseMs: init.waitPollBaseMs ?? 1_000,
    waitPollCapMs: init.waitPollCapMs ?? 8_000,
    antiEntropyIntervalMs: init.antiEntropyIntervalMs ?? 30_000,
    retentionMs: init.retentionMs ?? 7 * 24 * 3600_000,
    syncWrites: init.syncWrites ?? true
  }
}
