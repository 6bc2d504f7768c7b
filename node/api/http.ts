import { retryAfterSeconds } from '../../protocols/retry-after.js'
import type { z } from 'zod'
import type { BadRequestReason } from './stats.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** An error that becomes an HTTP answer: `{error: {name, message}}` with this status. */
export class HttpError extends Error {
  static override name = 'HttpError'
  readonly status: number
  readonly code: string
  /** set when the request itself was at fault: counted in `api.badRequests` */
  readonly reason?: BadRequestReason
  /** seconds a refused client should wait before it retries: sent as Retry-After */
  retryAfterS?: number
  /**
   * the body also carries OpenAI's error fields (type, param, code): an unknown route under /v1 may
   * be a call of an OpenAI client to an endpoint the door does not serve (/v1/embeddings)
   */
  openAiFields?: boolean
  constructor (status: number, code: string, message: string, reason?: BadRequestReason) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
    this.reason = reason
  }
}

/** A 400 for a request at fault, with the counter it is counted under. */
export function badRequest (reason: BadRequestReason, message: string): HttpError {
  return new HttpError(400, 'BAD_REQUEST', message, reason)
}

/** The parsed JSON body; a route that needs one and got none says why. */
export function bodyOf (request: { body?: unknown, headers: IncomingMessage['headers'] }): unknown {
  if (request.body !== undefined) return request.body
  if (request.headers['content-type'] === undefined) throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'no content-type: send the body as application/json', 'unsupported-media-type')
  throw badRequest('not-json', 'expected a JSON body')
}

/** A schema's complaints as one line: `path: message; ...`; `root` names what was checked (an item of a bulk body, say). */
export function zodMessage (err: z.ZodError, root?: string): string {
  const where = (path: PropertyKey[]): string => root === undefined ? path.join('.') || '(body)' : [root, ...path].join('.')
  // a schema's own message may name its field already (the capability's does): not twice
  return err.issues.map(i => i.message.startsWith(`${where(i.path)}: `) ? i.message : `${where(i.path)}: ${i.message}`).join('; ')
}

/** `value` checked by `schema`, or a 400 counted under `reason`. */
export function parseOr400<T> (schema: z.ZodType<T>, value: unknown, reason: BadRequestReason = 'invalid-body'): T {
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw badRequest(reason, zodMessage(parsed.error))
  return parsed.data
}

/** Error name -> [status, code, the bad-request counter when the client is at fault]. */
export type ErrorTable = Record<string, [number, string, BadRequestReason?]>

/** Refusals that pass by waiting: past the node's limit, or short of a majority for now. */
const TRANSIENT = new Set(['OverloadedError', 'QuorumUnavailableError'])

/**
 * Rethrows a layer's named error as the HTTP answer its table gives; any other error as it is. A
 * refusal that passes by waiting says when to come back: the error's own wait, else the node's.
 */
export function httpErrorBy (table: ErrorTable, retryAfterMs?: () => number): (err: any) => never {
  return err => {
    const mapped = table[err?.name]
    if (mapped === undefined) throw err
    const http = new HttpError(mapped[0], mapped[1], err.message, mapped[2])
    const wait = typeof err.retryAfterMs === 'number' ? err.retryAfterMs : TRANSIENT.has(err.name) ? retryAfterMs?.() : undefined
    if (wait !== undefined) http.retryAfterS = retryAfterSeconds(wait)
    throw http
  }
}


export interface RouteContext {
  req: IncomingMessage
  params: Record<string, string>
  /** each name at most once (a repeated one is refused before any route runs) */
  query: URLSearchParams
  /**
   * the parsed JSON body; 400 when malformed or too deep, 413 when over the limit, 415 when not JSON.
   * On a route whose schema says `bodyOptional`: undefined when the request has none
   */
  body: () => Promise<unknown>
  /** aborts when the client goes away before the answer: a long poll stops waiting for nobody */
  gone: () => AbortSignal
}

export interface Reply {
  status?: number
  body: unknown
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE'
  /** e.g. /v1/tasks/:id */
  path: string
  /** one line for the OpenAPI document */
  summary?: string
  /** the usual success status, for the OpenAPI document. @default 200 */
  status?: number
  /** what the route takes, for the OpenAPI document (the handler checks it with these schemas); `bodyOptional`: a request may send none */
  schema?: { body?: z.ZodType, bodyOptional?: boolean, query?: z.ZodType }
  /** other success statuses it answers, for the OpenAPI document */
  otherStatuses?: Record<number, string>
  /** error statuses of its own, for the OpenAPI document, beside those every route of its shape answers (see openapi.ts) */
  errorStatuses?: Record<number, string>
  handle: (ctx: RouteContext) => Promise<Reply> | Reply
}

/**
 * A route's check of the query parameters it does not take: a 400 naming the parameter and the ones
 * it takes. A misspelt filter (`?stat=running`) was ignored, and the listing came back unfiltered.
 */
export function unknownQueryCheck (route: Route): (query: URLSearchParams) => void {
  const shape = (route.schema?.query as { shape?: Record<string, unknown> } | undefined)?.shape
  const takes = Object.keys(shape ?? {})
  return query => { refuseUnknownQuery(query.keys(), takes, `${route.method} ${route.path}`) }
}

/** The same check for a route served outside the Route table (the event streams): `route` as "GET /v1/events". */
export function refuseUnknownQuery (names: Iterable<string>, takes: readonly string[], route: string): void {
  for (const name of names) {
    if (takes.includes(name)) continue
    const shown = JSON.stringify(name.slice(0, 100))
    throw badRequest('invalid-query', `unknown query parameter ${shown}: ${route} takes ${takes.length === 0 ? 'none' : takes.join(', ')}`)
  }
}

/**
 * Splits a request target into its raw path and query. Not `new URL(target, base)`: that throws on
 * `//` (an empty authority) and rewrites paths (`/a/../b`), so the router would see another path
 * than the client sent.
 */
export function parseTarget (target: string): { path: string, query: URLSearchParams } {
  let rest = target
  // absolute-form (what a proxy sends): only its path and query matter here
  if (/^https?:\/\//i.test(target)) {
    let url: URL
    try {
      url = new URL(target)
    } catch {
      throw badRequest('bad-target', `request target ${JSON.stringify(target.slice(0, 100))} is not a valid URL`)
    }
    rest = url.pathname + url.search
  }
  if (!rest.startsWith('/') || rest.startsWith('//')) {
    throw badRequest('bad-target', `request target ${JSON.stringify(rest.slice(0, 100))} is not a path (expected /v1/...)`)
  }
  const hash = rest.indexOf('#')
  if (hash >= 0) rest = rest.slice(0, hash)
  const mark = rest.indexOf('?')
  const path = mark < 0 ? rest : rest.slice(0, mark)
  const search = mark < 0 ? '' : rest.slice(mark + 1)
  // URLSearchParams never throws: a malformed escape would stay as written, and be read as a value
  if (/%(?![0-9A-Fa-f]{2})/.test(search)) throw badRequest('bad-target', `the query ${JSON.stringify(search.slice(0, 100))} has a malformed %-escape`)
  const query = new URLSearchParams(search)
  const seen = new Set<string>()
  for (const key of query.keys()) {
    if (seen.has(key)) throw badRequest('repeated-param', `query parameter ${JSON.stringify(key.slice(0, 100))} is given more than once`)
    seen.add(key)
  }
  return { path, query }
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** The header every answer of the control API carries, with the node's version: a client reads another server's answers as none of ours. */
export const NODE_HEADER = 'x-agentmesh-version'
