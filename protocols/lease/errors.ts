import type { Answer } from './client.js'

/** Another claimant holds a live lease on a majority, or the task may not run yet. */
export class LeaseDeniedError extends Error {
  static override name = 'LeaseDeniedError'
  readonly holder?: string
  constructor (message = 'lease held by another peer', holder?: string) { super(message); this.name = 'LeaseDeniedError'; this.holder = holder }
}

/** The holder could not renew with a majority before expiry: it must stop. */
export class LeaseLostError extends Error {
  static override name = 'LeaseLostError'
  constructor (message = 'lease lost') { super(message); this.name = 'LeaseLostError' }
}

/** A result or failure report carried a term that is no longer current: it was refused. */
export class StaleTermError extends Error {
  static override name = 'StaleTermError'
  constructor (message = 'stale lease term') { super(message); this.name = 'StaleTermError' }
}

/** Too few replicas answered to reach a majority. */
export class QuorumUnavailableError extends Error {
  static override name = 'QuorumUnavailableError'
  constructor (message = 'no majority of the replica set answered') { super(message); this.name = 'QuorumUnavailableError' }
}

/** The task is finished (completed, canceled or dead): nothing to claim. */
export class TaskFinishedError extends Error {
  static override name = 'TaskFinishedError'
  readonly state: string
  constructor (state: string) { super(`task is ${state}`); this.name = 'TaskFinishedError'; this.state = state }
}

/** A signal for a task that does not wait for it (finished, running, or waiting for another name). */
export class TaskNotWaitingError extends Error {
  static override name = 'TaskNotWaitingError'
  constructor (message = 'the task is not waiting for this signal') { super(message); this.name = 'TaskNotWaitingError' }
}

/** ctx.waitFor's time ran out with no signal: the attempt fails with this. */
export class WaitTimeoutError extends Error {
  static override name = 'WaitTimeoutError'
  constructor (message: string) { super(message); this.name = 'WaitTimeoutError' }
}

/** Thrown through the agent when it waits: the executor frees the slot and reports nothing. */
export class TaskSuspendedError extends Error {
  static override name = 'TaskSuspendedError'
  constructor (readonly waitingFor: string) { super(`waiting for the signal "${waitingFor}"`); this.name = 'TaskSuspendedError' }
}

/**
 * Every member of the placement voted in this epoch and no outcome has a majority: votes are cast
 * once an epoch, so none ever will. Nothing can be certified here; the task must move to a new epoch.
 */
export class DeadlockedVotesError extends Error {
  static override name = 'DeadlockedVotesError'
  constructor (message: string) { super(message); this.name = 'DeadlockedVotesError' }
}

/** The named error for a majority operation that fell short. */
export function refusal (answers: Answer[], fallback: string): Error {
  const finished = answers.find(a => a.res.status === 'FINISHED' || a.res.status === 'VOTED')
  if (finished !== undefined) return new TaskFinishedError(finished.res.state ?? finished.res.vote?.value.state ?? 'finished')
  if (answers.some(a => a.res.status === 'STALE_TERM')) return new StaleTermError(fallback)
  const denied = answers.find(a => a.res.status === 'DENIED' || a.res.status === 'RETRY_LATER')
  if (denied !== undefined) return new LeaseDeniedError(denied.res.status === 'RETRY_LATER' ? 'retry backoff' : (denied.res.reason ?? 'lease held by another peer'), denied.res.holder)
  const reasons = answers.map(a => `${a.peer.slice(-6)}: ${a.res.status}${a.res.reason === undefined ? '' : ` (${a.res.reason})`}`)
  return new QuorumUnavailableError(`${fallback}; ${reasons.join(', ')}`)
}
