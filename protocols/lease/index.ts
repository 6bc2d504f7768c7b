/**
 * Leases: `/agentmesh/lease/1.0.0`, acquire, renew, release, and the result (complete, fail) that
 * only the current term may report, plus cancel, redrive and drop.
 *
 * Promises: each replica grants by compare-and-set on its own persisted state, with a term above
 * any it granted before for the task (kept across restarts); a claim holds only with a majority;
 * a replica accepts one result per task, and only from the holder of its current term, so at most
 * one result per task is accepted by a majority.
 * Does not promise mutual exclusion under every failure: replica sets are computed from each
 * peer's own view of the mesh, and clocks drift, so two peers may briefly both run a task. Such
 * duplicate executions are counted; their late results are refused as stale.
 */
export { LeaseClient, HeldLease, majority } from './client.js'
export type { LeaseCaller, LeaseClientInit, LeaseClientStats } from './client.js'
export { leaseHandler } from './handler.js'
export * from './constants.js'
export * from './errors.js'
export * from './messages.js'
