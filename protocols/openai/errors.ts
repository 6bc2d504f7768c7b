/**
 * An error answered in OpenAI's shape, `{error: {message, type, param, code}}`, with its status.
 * The official clients turn the status into their own classes (404: NotFoundError, 400:
 * BadRequestError), so each case here has its own status.
 */
export class OpenAIError extends Error {
  static override name = 'OpenAIError'
  readonly status: number
  readonly type: string
  readonly param: string | null
  readonly code: string | null
  /** when a refused client may retry (a 429, a 503): sent as Retry-After, which the official clients honour */
  readonly retryAfterMs?: number
  constructor (status: number, message: string, o: { type?: string, param?: string | null, code?: string | null, retryAfterMs?: number } = {}) {
    super(message)
    this.name = 'OpenAIError'
    this.status = status
    this.type = o.type ?? (status >= 500 ? 'api_error' : 'invalid_request_error')
    this.param = o.param ?? null
    this.code = o.code ?? null
    if (o.retryAfterMs !== undefined) this.retryAfterMs = o.retryAfterMs
  }

  toJSON (): { error: { message: string, type: string, param: string | null, code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

/** No live peer serves the model (404, code model_not_found). */
export class ModelNotFoundError extends OpenAIError {
  static override name = 'ModelNotFoundError'
  constructor (model: string) {
    super(404, `The model '${model}' does not exist or no live peer of the mesh serves it`, { param: 'model', code: 'model_not_found' })
    this.name = 'ModelNotFoundError'
  }
}

/** The body is not a chat completion request this gateway can run (400). */
export class InvalidRequestError extends OpenAIError {
  static override name = 'InvalidRequestError'
  constructor (message: string, param: string | null = null, code: string | null = 'invalid_request') {
    super(400, message, { param, code })
    this.name = 'InvalidRequestError'
  }
}

/** The mesh task ended without an answer: every attempt failed, it was canceled, or time ran out. */
export class CompletionFailedError extends OpenAIError {
  static override name = 'CompletionFailedError'
  readonly taskId: string
  constructor (status: number, message: string, taskId: string, code: string) {
    super(status, message, { code, ...(status === 429 ? { type: 'rate_limit_error' } : {}) })
    this.name = 'CompletionFailedError'
    this.taskId = taskId
  }
}

/** The client left before its answer: nothing is written, and its task is canceled. */
export class ClientGoneError extends Error {
  static override name = 'ClientGoneError'
  constructor (taskId: string) { super(`client left before the answer to task ${taskId}`); this.name = 'ClientGoneError' }
}
