/**
 * The replica: one peer's share of every replica set it is in. Keeps task records, grants leases
 * by compare-and-set on its own persisted state, accepts one result per task from the current
 * term, expires lapsed leases into retries (exponential backoff, same jitter on every replica) or
 * dead letters. Storage is behind the ReplicaStore interface (protocols/task/store.ts).
 */
export { Replica } from './replica.js'
export type { ReplicaInit, ReplicaStats } from './replica.js'
export { retryDelay } from './backoff.js'
export { RecentCache } from './recent.js'
