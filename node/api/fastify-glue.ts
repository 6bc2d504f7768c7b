import { jsonDeeperThan } from './body.js'
import { HttpError, badRequest } from './http.js'
import { retryAfterSeconds } from '../../protocols/retry-after.js'
import type { ApiStats } from './stats.js'
import type { Logger } from '@libp2p/interface'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingMessage } from 'node:http'

export interface BodyLimits {
  /** larger bodies get 413 */
  maxBytes: number
  /** deeper nesting of arrays and objects gets 400 */
  maxDepth: number
}

/** Decodes a body as UTF-8 and throws on bytes that are not; a BOM is kept, so JSON.parse refuses it as before. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The only body parser: JSON (`application/json` or any `+json` type), within the size and depth
 * limits. Any other type is a 415: a web page may send text/plain or a form to 127.0.0.1 without
 * asking first, while a JSON type makes the browser ask (CORS), which this server never allows.
 */
export function addJsonParser (app: FastifyInstance, limits: BodyLimits): void {
  app.removeAllContentTypeParsers()
  app.addHook('preParsing', async request => {
    const encoding = request.headers['content-encoding']
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `content-encoding ${JSON.stringify(encoding.slice(0, 100))} is not supported; send the body uncompressed`, 'unsupported-media-type')
    }
    // JSON is UTF-8 (RFC 8259): a body said to be in another charset was read as UTF-8 all the same
    const charset = /;\s*charset\s*=\s*"?([\w.:-]*)/i.exec(request.headers['content-type'] ?? '')?.[1]
    if (charset !== undefined && !/^(utf-?8|us-ascii)$/i.test(charset)) {
      throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `charset ${JSON.stringify(charset.slice(0, 100))} is not supported; send JSON as UTF-8`, 'unsupported-media-type')
    }
  })
  // both parsers read the body as a Buffer (parseAs), to check its UTF-8 strictly
  const parse = (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, value?: unknown) => void): void => {
    let text: string
    try {
      text = strictUtf8.decode(body as Buffer)
    } catch {
      // bytes that are no UTF-8 became U+FFFD and were stored as such
      return done(badRequest('not-json', 'body is not valid UTF-8'), undefined)
    }
    // a route that takes no body reads an empty one as none (clients send the JSON content-type all the same)
    if (text.trim() === '') return (request.routeOptions.config as { bodyOptional?: boolean } | undefined)?.bodyOptional === true ? done(null, undefined) : done(badRequest('not-json', 'expected a JSON body'), undefined)
    // before parsing: every recursive walk after it (schema checks, hashing) would overflow on [[[[...]]]]
    if (jsonDeeperThan(text, limits.maxDepth)) return done(badRequest('too-deep', `body nests arrays and objects deeper than ${limits.maxDepth} levels`), undefined)
    try {
      done(null, JSON.parse(text))
    } catch (err: any) {
      done(badRequest('not-json', `body is not valid JSON: ${String(err.message).slice(0, 200)}`), undefined)
    }
  }
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: limits.maxBytes }, parse)
  app.addContentTypeParser(/^application\/[\w.-]+\+json$/, { parseAs: 'buffer', bodyLimit: limits.maxBytes }, parse)
}

/** The HTTP status an error stands for: ours (HttpError.status), Fastify's (statusCode), else 500. */
export function errorStatus (err: any): number {
  return typeof err?.status === 'number' ? err.status : typeof err?.statusCode === 'number' ? err.statusCode : 500
}

/** Fastify's own refusals, as the API's named answers and counters. */
export function asHttpError (err: any, request: FastifyRequest): HttpError | undefined {
  if (err instanceof HttpError) return err
  switch (err?.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = request.headers['content-type']
      const given = type === undefined ? 'no content-type' : `content-type ${JSON.stringify(type.slice(0, 100))}`
      return new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `${given}: send the body as application/json`, 'unsupported-media-type')
    }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(413, 'PAYLOAD_TOO_LARGE', `body exceeds the limit of ${String(request.routeOptions.bodyLimit)} bytes`, 'body-too-large')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return badRequest('not-json', 'expected a JSON body')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return badRequest('bad-http', 'the body is not as long as its content-length says')
    case 'FST_ERR_BAD_URL':
      // an absolute-form target (what a proxy sends) that is no URL at all has no escape to blame
      if (!(request.raw.url ?? '/').startsWith('/')) return badRequest('bad-target', 'the request target is neither a path nor a valid absolute URL')
      return badRequest('bad-escape', 'the path has a malformed percent-escape (expected %XX forming UTF-8)')
    // Fastify's own message repeats the whole path part, however long
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new HttpError(414, 'URI_TOO_LONG', 'a part of the path is longer than any id this API takes', 'bad-http')
  }
  // a full disk, say: this node takes no writes until restarted, another node may (Retry-After is the caller's to add)
  if (err?.name === 'StoreFailedError') return new HttpError(503, 'STORE_FAILED', String(err.message))
  if (err?.validation !== undefined) return badRequest(err.validationContext === 'querystring' ? 'invalid-query' : 'invalid-body', String(err.message))
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) return new HttpError(err.statusCode, 'BAD_REQUEST', String(err.message), 'bad-http')
  return undefined
}

/** The OpenAI door's paths (see openai-door.ts): /v1/chat/completions and /v1/models[/:model] */
export const OPENAI_DOOR_PATH = /^\/v1\/(chat\/completions|models)(\/|\?|$)/

/**
 * Every error answer: `{error: {name, message}}` with its status (counted by the server as it
 * leaves). A client that left gets nothing (the server counts it gone, and as an error); anything
 * unexpected is a 500, logged with its stack.
 */
export function answerError (err: any, request: FastifyRequest, reply: FastifyReply, ctx: { stats: ApiStats, log: Logger, internalError: (err: unknown, what: string) => void, retryAfterMs?: () => number | undefined }): void {
  const res = reply.raw
  if (res.destroyed || res.headersSent || err?.code === 'ECONNRESET') {
    // no answer leaves: the server counts the client gone when the response closes unfinished
    ctx.log('%s %s: client gone: %s', request.method, request.url, err?.message ?? err)
    if (!res.destroyed) res.destroy()
    return
  }
  const http = asHttpError(err, request)
  if (http === undefined) {
    ctx.internalError(err, `${request.method} ${request.url}`)
    void reply.code(500).send({ error: { name: 'INTERNAL', message: String(err?.message ?? err) } })
    return
  }
  if (http.reason !== undefined) ctx.stats.badRequests[http.reason]++
  if (http.code === 'STORE_FAILED') {
    ctx.stats.storeFailed++
    const wait = ctx.retryAfterMs?.()
    if (wait !== undefined) http.retryAfterS ??= retryAfterSeconds(wait)
  }
  if (http.retryAfterS !== undefined) void reply.header('retry-after', String(http.retryAfterS))
  // an OpenAI client reads every error on the door's paths in OpenAI's shape, the router's own too
  const openAi = http.openAiFields === true
    ? { type: 'invalid_request_error', param: null, code: 'unknown_url' }
    : OPENAI_DOOR_PATH.test(request.raw.url ?? '') ? { type: 'invalid_request_error', param: null, code: http.code.toLowerCase() } : {}
  sendError(request, reply, http.status, { error: { name: http.code, message: http.message, ...openAi } })
}

/**
 * Sends an error answer, the API's or a door's. A body refused unread (413, 415, a stopping node's
 * 503) is not parsed, and the connection closes after the answer: it goes out once the rest of the
 * body, up to twice the limit, is read and dropped. A body read whole (over a route's own limit)
 * keeps the connection.
 */
export function sendError (request: FastifyRequest, reply: FastifyReply, status: number, body: unknown): void {
  const send = (): void => { void reply.code(status).send(body) }
  // a 503 of a stopping node closes the connection too, its request's body unread
  const closes = status === 413 || status === 415 || String(reply.getHeader('connection')).toLowerCase() === 'close'
  if (!closes || request.raw.complete) return send()
  void reply.header('connection', 'close')
  afterBody(request.raw, 2 * Number(request.routeOptions.bodyLimit), send)
}

/** A URL or path for a log line or an error message: at most 200 characters. */
export function shortUrl (url: string): string {
  return url.length > 200 ? `${url.slice(0, 200)}...` : url
}

/** The path patterns of every route, to tell a wrong method (405) from a wrong path (404). */
export function pathPatterns (app: FastifyInstance): { methodsFor: (path: string) => string[] } {
  const routes: Array<{ methods: string[], regex: RegExp }> = []
  app.addHook('onRoute', route => {
    const pattern = route.url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, '[^/]+').replace(/\*/g, '.*')
    routes.push({ methods: [route.method].flat(), regex: new RegExp(`^${pattern}/?$`) })
  })
  return { methodsFor: path => routes.filter(r => r.regex.test(path)).flatMap(r => r.methods) }
}

/**
 * Reads and drops what is left of a refused request's body (at most `maxBytes` more), then answers.
 * The answer closes the connection, and closing a socket with unread data in it resets it: a client
 * still sending (most send the whole body before they read) met the reset instead of the answer.
 * Past `maxBytes` it answers anyway and the connection is cut.
 */
function afterBody (req: IncomingMessage, maxBytes: number, answer: () => void): void {
  if (req.destroyed || !Number.isFinite(maxBytes)) {
    answer()
    return
  }
  let dropped = 0
  let answered = false
  const once = (): void => {
    if (answered) return
    answered = true
    answer()
  }
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length
    if (dropped > maxBytes) {
      req.pause()
      once()
    }
  })
  req.once('end', once)
  req.once('error', once)
  req.once('close', once)
  req.resume()
}
