/**
 * Why the control API refused a request. Each reason is a counter under `api.badRequests` in
 * GET /v1/metrics, so a misbehaving client shows up there instead of in the error log.
 */
export const BAD_REQUEST_REASONS = [
  /** the HTTP parser refused the bytes: a bad method token, request line, header or chunk */
  'bad-http',
  /** request line and headers over Node's limit (16 KiB) */
  'headers-too-large',
  /** the request did not arrive within Node's request or headers timeout */
  'timeout',
  /** an HTTP/1.1 request without a Host header */
  'no-host',
  /** a request target that is not a path (`//`, `*`, an absolute URL that does not parse) */
  'bad-target',
  /** a malformed percent-escape in a path segment */
  'bad-escape',
  /** a query parameter given more than once */
  'repeated-param',
  'no-route',
  /** a known route with another method, or CONNECT */
  'bad-method',
  /** an Expect header other than 100-continue */
  'bad-expect',
  /** a body that is declared as something other than JSON, or compressed */
  'unsupported-media-type',
  'body-too-large',
  'not-json',
  /** JSON nested deeper than the limit: refused before parsing */
  'too-deep',
  /** a body that parses but does not fit the route's schema */
  'invalid-body',
  'invalid-query',
  'invalid-id',
  /** the task layer refused the submit (bad capability, input too large) */
  'invalid-task',
  /** a request a protocol door (OpenAI, MCP, A2A) refused as malformed */
  'door'
] as const

export type BadRequestReason = typeof BAD_REQUEST_REASONS[number]

/** The control API's counters, shown as `api` in GET /v1/metrics. */
export interface ApiStats {
  /** requests that reached the router */
  requests: number
  /** refused requests (4xx other than an unknown task or a conflict), by reason */
  badRequests: Record<BadRequestReason, number>
  /** 500 answers: each is a bug, logged with its stack */
  internalErrors: number
  /** 503 answers because this node's store failed a write (a full disk) and takes no more until restarted */
  storeFailed: number
  /** requests whose client went away before the answer */
  clientsGone: number
  /** error answers of any kind (4xx and 5xx), and requests whose client left */
  errors: number
  /** requests refused for a missing or wrong bearer token (401) */
  unauthorized: number
  /** requests pipelined behind an answer that closed their connection: dropped unanswered and unrun (RFC 9112 §9.6) */
  droppedAfterClose: number
}

export function createApiStats (): ApiStats {
  return {
    requests: 0,
    badRequests: Object.fromEntries(BAD_REQUEST_REASONS.map(r => [r, 0])) as Record<BadRequestReason, number>,
    internalErrors: 0,
    storeFailed: 0,
    clientsGone: 0,
    errors: 0,
    unauthorized: 0,
    droppedAfterClose: 0
  }
}

/** A copy for a metrics answer, so a later count does not change an answer being serialized. */
export function snapshotApiStats (stats: ApiStats): ApiStats {
  return { ...stats, badRequests: { ...stats.badRequests } }
}
