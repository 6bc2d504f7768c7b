/**
 * Leases and final states: `/agentmesh/lease/1.0.0`. Every request names a task's pinned placement
 * epoch and goes to that placement's members only.
 *
 * Promises: a lease holds only with grants of a majority of the placement (of its full size); each
 * member grants by compare-and-set on its own persisted state, with a term above any it granted
 * before for the task (kept across restarts). A final state (completed, canceled, dead) exists only
 * as a certificate: signed votes of a majority, where each member votes at most once per
 * generation, so at most one outcome per task is ever certified, and a late result from a paused
 * holder is refused. Members refuse another epoch, a sealed epoch, and tasks they are not members of.
 * Does not promise mutual exclusion of executions: a holder frozen past its lease may still run
 * while another holds the task. Such duplicate executions are counted; their results are refused.
 */
export { LeaseClient, majority } from './client.js'
export { HeldLease } from './held-lease.js'
export type { Prerun } from './prerun-votes.js'
export type { Answer, LeaseCaller, LeaseClientInit, LeaseClientStats, Target } from './client.js'
export { leaseHandler } from './handler.js'
export type { HandlerStats } from './handler.js'
export { untilQuorum } from './quorum.js'
export * from './constants.js'
export * from './errors.js'
export * from './messages.js'
