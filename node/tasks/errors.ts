export class TaskNotFoundError extends Error {
  static override name = 'TaskNotFoundError'
  constructor (id: string, why?: string) { super(`no task ${id}${why === undefined ? '' : `: ${why}`}`); this.name = 'TaskNotFoundError' }
}

/** A submit that breaks a limit (input size, attempts) or names an invalid capability. */
export class InvalidTaskError extends Error {
  static override name = 'InvalidTaskError'
  constructor (message: string) { super(message); this.name = 'InvalidTaskError' }
}

/** A submit that asked for a live capable peer (requirePeer) when none offers the capability. */
export class NoCapablePeerError extends Error {
  static override name = 'NoCapablePeerError'
  constructor (message: string) { super(message); this.name = 'NoCapablePeerError' }
}

/** The node holds as many unfinished tasks as it takes (maxUnfinishedTasks): a submit is refused, to be retried after `retryAfterMs`. */
export class OverloadedError extends Error {
  static override name = 'OverloadedError'
  readonly retryAfterMs: number
  constructor (message: string, retryAfterMs: number) { super(message); this.name = 'OverloadedError'; this.retryAfterMs = retryAfterMs }
}

/** A task input over the size limit. */
export class TaskTooLargeError extends Error {
  static override name = 'TaskTooLargeError'
  constructor (message: string) { super(message); this.name = 'TaskTooLargeError' }
}

/** The node is stopping: a running task is given back, not failed. */
export class NodeStoppingError extends Error {
  static override name = 'NodeStoppingError'
  constructor (message = 'node stopping') { super(message); this.name = 'NodeStoppingError' }
}

/** The task was canceled while it ran here: the reason of its agent's `signal`. */
export class TaskCanceledError extends Error {
  static override name = 'TaskCanceledError'
  constructor (message = 'task canceled') { super(message); this.name = 'TaskCanceledError' }
}

/** The submitting node refused a batch of progress events (it answers why). */
export class ProgressRefusedError extends Error {
  static override name = 'ProgressRefusedError'
  constructor (message: string) { super(message); this.name = 'ProgressRefusedError' }
}

/** A signal whose data does not match the schema the waiting task named. */
export class InvalidSignalError extends Error {
  static override name = 'InvalidSignalError'
  constructor (message: string) { super(message); this.name = 'InvalidSignalError' }
}

/** A redrive of a task whose deadline has passed: every member would refuse its attempts, so it would die again at once. */
export class TaskPastDeadlineError extends Error {
  static override name = 'TaskPastDeadlineError'
  constructor (message: string) { super(message); this.name = 'TaskPastDeadlineError' }
}

/** An agent still running `abortGraceMs` after its run's signal aborted: the run was ended without it. */
export class AgentIgnoredAbortError extends Error {
  static override name = 'AgentIgnoredAbortError'
  constructor (message: string) { super(message); this.name = 'AgentIgnoredAbortError' }
}

/** A submit that names an existing task by its idempotency key but asks for other options than that task has. */
export class IdempotencyConflictError extends Error {
  static override name = 'IdempotencyConflictError'
  /** an agent's subtask refused so is refused alike on every attempt */
  readonly unrecoverable = true
  constructor (message: string) { super(message); this.name = 'IdempotencyConflictError' }
}
