/** Where the OpenAI-compatible API lives on every daemon (the `baseURL` of an OpenAI client). */
export const OPENAI_PREFIX = '/v1'

/**
 * The longest a chat completion waits for its mesh task, retries on other peers included; past it
 * the request gets a 504 (or an error event in a stream) and the task is canceled. It is also the
 * task's deadline.
 * @default 600_000 (10 minutes)
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 600_000

/**
 * How long one attempt of a completion may run on a peer before it is aborted and retried.
 * @default 300_000 (5 minutes)
 */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 300_000

/**
 * While a streamed completion waits for tokens, an SSE comment goes out this often so proxies and
 * clients do not take the quiet for a dead connection.
 * @default 15_000
 */
export const DEFAULT_KEEPALIVE_MS = 15_000

/**
 * How long a streamed completion holds back its 200 and first chunk for the first token. A task
 * that fails within it (a model's 400, a refusal) is answered with its status, as a non-streamed
 * completion is, which the official clients turn into their error classes (a 429's Retry-After
 * honoured); after it, an error can only be an event in the stream. 0: the head goes out at once.
 * @default 2_000
 */
export const DEFAULT_STREAM_HOLD_MS = 2_000

/**
 * One wait for a task's final state lasts at most this long before it is asked again (a wait wakes
 * at once on the completion notice; this bounds how long a lost notice costs).
 * @default 30_000
 */
export const DEFAULT_WAIT_SLICE_MS = 30_000

/** What `GET /v1/models` answers as each model's owner. */
export const OWNED_BY = 'agentmesh'

/** The header that names the mesh task a completion ran as. */
export const TASK_HEADER = 'x-agentmesh-task'
