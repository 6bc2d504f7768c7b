import { TypedEventEmitter } from '@libp2p/interface'
import type { TaskNotice } from '../../protocols/gossip/index.js'

/** A claim this node won: how long the acquire took, and which attempt it is. */
export interface ClaimedEvent {
  id: string
  capability: string
  generation: number
  /** the claim that won the lease: what tells a retry's claim from the first one's */
  claimId: string
  attempt: number
  claimMs: number
}

/** An execution on this node ended: how long the agent ran, and how it ended. */
export interface RanEvent {
  id: string
  capability: string
  generation: number
  claimId: string
  outcome: 'completed' | 'failed' | 'lease-lost' | 'duplicate' | 'suspended' | 'canceled'
  runMs: number
  /** submit to certified result, by this node's clock against the submitter's: only when completed */
  latencyMs?: number
  error?: string
}

/** A task this node's execution or recovery certified dead. */
export interface DeadEvent {
  id: string
  capability: string
  reason: string
}

export interface LeaseLostEvent {
  id: string
  capability: string
  reason: string
}

/** A task submitted through this node. */
export interface SubmittedEvent {
  id: string
  capability: string
}

export interface TaskEventMap {
  submitted: CustomEvent<SubmittedEvent>
  /** a notice (gossiped, sent to this node, or published by it): a hint of progress on a task */
  notice: CustomEvent<TaskNotice>
  claimed: CustomEvent<ClaimedEvent>
  ran: CustomEvent<RanEvent>
  dead: CustomEvent<DeadEvent>
  'lease-lost': CustomEvent<LeaseLostEvent>
}

/**
 * What happened to tasks on this node, for the operator's log lines and the Prometheus histograms:
 * the parts that know (claimer, executor, sweeper) dispatch, the observers listen, neither knows the other.
 */
export class TaskEvents extends TypedEventEmitter<TaskEventMap> {}
