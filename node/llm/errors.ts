/** A task's token or step budget is spent. */
export class BudgetExceededError extends Error {
  static override name = 'BudgetExceededError'
  constructor (message: string) { super(message); this.name = 'BudgetExceededError' }
}

/**
 * The model's plan failed its schema twice (after one repair round). Unrecoverable unless it names
 * a capability no live peer offered: both answers are in the task's journal, so another attempt
 * replays them and fails alike, while the capabilities they are checked against may change.
 */
export class InvalidPlanError extends Error {
  static override name = 'InvalidPlanError'
  readonly unrecoverable: boolean
  constructor (message: string, unrecoverable = true) { super(message); this.name = 'InvalidPlanError'; this.unrecoverable = unrecoverable }
}

/**
 * The model answered 429 to every try of the node's client (llm.maxRetries, each after the wait it
 * asked for). Retried as any failed attempt (another peer, or later, may be let through); its
 * message names the status, so a door answers 429 when the task dies of it, where it answered 502.
 */
export class ModelRateLimitedError extends Error {
  static override name = 'ModelRateLimitedError'
  constructor (message: string) { super(message); this.name = 'ModelRateLimitedError' }
}

/** The model's endpoint answered without an answer in it (no choice: a malformed or cut-off reply). Retried, as any failed attempt. */
export class ModelAnswerError extends Error {
  static override name = 'ModelAnswerError'
  constructor (message: string) { super(message); this.name = 'ModelAnswerError' }
}
