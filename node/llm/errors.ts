/** A task's token or step budget is spent. */
export class BudgetExceededError extends Error {
  static override name = 'BudgetExceededError'
  constructor (message: string) { super(message); this.name = 'BudgetExceededError' }
}

/**
 * The model's plan failed its schema twice (after one repair round). Unrecoverable: both answers
 * are in the task's journal, so another attempt replays them and fails alike.
 */
export class InvalidPlanError extends Error {
  static override name = 'InvalidPlanError'
  readonly unrecoverable = true
  constructor (message: string) { super(message); this.name = 'InvalidPlanError' }
}

/** The model's endpoint answered without an answer in it (no choice: a malformed or cut-off reply). Retried, as any failed attempt. */
export class ModelAnswerError extends Error {
  static override name = 'ModelAnswerError'
  constructor (message: string) { super(message); this.name = 'ModelAnswerError' }
}
