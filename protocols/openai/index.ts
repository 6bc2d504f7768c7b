/**
 * OpenAI-compatible gateway: every node serves `GET /v1/models` and `POST /v1/chat/completions`
 * (JSON and server-sent events) in OpenAI's shapes, so the official clients work against any node.
 * The models are those live peers announce in presence (a chat capability `llm.chat.<model>` whose
 * info names the model); a request is a mesh task on that capability, submitted from the node that
 * holds the HTTP request and run by whichever peer serving the model claims it. Tokens stream from
 * that peer straight to this node (records protocol `progress`). A non-streamed request survives
 * the death of the peer running it: the task runs again elsewhere and the answer is its certified
 * result. A streamed one that is re-run midway continues only if the new run re-traces the text
 * already sent; otherwise it ends with an error event (see StreamedText).
 *
 * It does not promise: `n` > 1, logprobs, the legacy completions or embeddings endpoints, or an
 * answer after the client left (its task is canceled).
 */
export { OPENAI_PREFIX, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_ATTEMPT_TIMEOUT_MS, DEFAULT_KEEPALIVE_MS, DEFAULT_WAIT_SLICE_MS, TASK_HEADER } from './constants.js'
export { OpenAIError, ModelNotFoundError, InvalidRequestError, CompletionFailedError, ClientGoneError } from './errors.js'
export { CHAT_CAPABILITY, chatCapability, liveModels } from './models.js'
export type { ModelEntry } from './models.js'
export { chatMessageSchema, chatCompletionRequestSchema, chatResultSchema } from './schema.js'
export type { ChatMessage, ChatCompletionRequest, ChatResult } from './schema.js'
export { chatTaskInput, completionOf, chunkOf } from './convert.js'
export { StreamedText } from './streamed-text.js'
export { OpenAIGateway } from './gateway.js'
export type { GatewayBackend, GatewayInit, GatewayStats, TaskOutcome, ProgressEvent } from './gateway.js'
