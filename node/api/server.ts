import { createServer } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import Fastify from 'fastify'
import { AddressInUseError, InvalidConfigError } from '../errors.js'
import { authHook, isLoopbackHost, requestHost, requiresToken } from './auth.js'
import { DOORS } from './door-list.js'
import { addJsonParser, answerError, asHttpError, pathPatterns, shortUrl } from './fastify-glue.js'
import { DEFAULT_CLOSE_GRACE_MS, GracefulClose } from './graceful-close.js'
import { guardServer, handleClientError, refusedByServer } from './guards.js'
import { HttpError, NODE_HEADER, badRequest, bodyOf, parseTarget, unknownQueryCheck } from './http.js'
import { meshRoute, metricsRoute, nodeRoutes } from './node-routes.js'
import { taskEventsRoute } from './event-routes.js'
import { meshEventsRoute } from './mesh-events-route.js'
import { openApiRoute } from './openapi.js'
import { isUiAsset, uiRoutes } from './ui-routes.js'
import { MeshMetrics, prometheusRoute } from './prometheus.js'
import { ConnectionTurns, closeWhenAsked } from './connection-turns.js'
import { endedByClient } from './sse-stream.js'
import { VERSION } from '../version.js'
import { createApiStats } from './stats.js'
import { taskRoutes } from './task-routes.js'
import { memoryRoutes } from './memory-routes.js'
import type { Route } from './http.js'
import type { DoorOptions } from './door-options.js'
import type { TaskLayer } from '../tasks/task-layer.js'
import type { ApiStats } from './stats.js'
import type { AgentNode } from '../create-node.js'
import type { Logger } from '@libp2p/interface'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ApiServerInit {
  /** @default '127.0.0.1' */
  host?: string
  /** 0 picks a free port. @default 7070 */
  port?: number
  /**
   * Largest request body accepted; larger ones get 413.
   * @default 2_097_152 (2 MiB: a 1 MiB task input as JSON, with room to spare), or the node's maxInputBytes and 64 KiB when larger
   */
  maxBodyBytes?: number
  /**
   * Deepest nesting of arrays and objects accepted in a body (the body itself is level 1);
   * deeper ones get 400 before they are parsed.
   * @default 100
   */
  maxJsonDepth?: number
  /**
   * How long an idle kept-alive connection stays open. Node's own 5 s closed connections a client's
   * pool was about to reuse: a request written as the server's close arrives fails with ECONNRESET
   * (one in 1,500 tasks at 256 in flight in the daemons bench). Fastify's own default, which a server
   * made by our factory did not get.
   * @default 72_000
   */
  keepAliveMs?: number
  /**
   * How long a request's headers and body may take to arrive before the answer is 408 (a long poll's
   * wait for its answer does not count).
   * @default 30_000
   */
  requestTimeoutMs?: number
  /**
   * How long a stop waits for the requests under way to be answered before it cuts them off (long
   * polls answer at once, streams end at once; see GracefulClose).
   * @default 3_000
   */
  closeGraceMs?: number
  /**
   * The bearer token every route requires. Required when `host` is not a loopback address.
   * @default undefined (no token: only for loopback)
   */
  token?: string
  /** routes added by later layers */
  routes?: Route[]
  /** serve the protocol doors (OpenAI, MCP, A2A) when the node runs tasks. @default true */
  doors?: boolean
  /** the doors' timers (the daemon's config `doors`); each door's own defaults otherwise */
  doorOptions?: DoorOptions
  /** the longest a `?wait=` on a submit or a result waits, whatever the client asks. @default 300_000 */
  maxWaitMs?: number
  /**
   * An event stream's client that reads this many bytes behind is cut off: a stalled reader must
   * not grow the node's memory. @default 1_048_576
   */
  sseMaxBufferedBytes?: number
  /** an answer that is a bug (a 500 of any route or door): the daemon tells its operator log */
  onInternalError?: (err: unknown, what: string) => void
}

export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

/**
 * The body limit for a node whose task inputs may be `maxInputBytes`: 2 MiB, or that input and
 * 64 KiB of the submit around it. A node configured for larger inputs answered 413 to them.
 */
function bodyLimitFor (maxInputBytes: number): number {
  return Math.max(DEFAULT_MAX_BODY_BYTES, maxInputBytes + 64 * 1024)
}
export const DEFAULT_MAX_JSON_DEPTH = 100
export const DEFAULT_KEEP_ALIVE_MS = 72_000
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000

/**
 * Aborts once the response closes unfinished (its client went away), or once the server begins
 * to stop. Not AbortSignal.any over `stopping`: that long-lived signal kept a reference to every
 * long poll's signal for the server's life.
 */
function goneSignal (res: ServerResponse, stopping: AbortSignal): AbortSignal {
  const controller = new AbortController()
  const onStop = (): void => { controller.abort() }
  if (stopping.aborted) onStop()
  else stopping.addEventListener('abort', onStop, { once: true })
  res.once('close', () => {
    stopping.removeEventListener('abort', onStop)
    if (!res.writableFinished) controller.abort()
  })
  return controller.signal
}

/** The query of a request, parsed once by the onRequest check (each name at most once). */
const queries = new WeakMap<FastifyRequest, URLSearchParams>()

/**
 * The longest path part the router matches: a memory record id of 256 UTF-16 units, each up to
 * three UTF-8 bytes written as %XX (a surrogate pair is four bytes for two units).
 */
const MAX_ENCODED_PARAM_LENGTH = 256 * 9

/** An API reachable from other machines needs a token: refused before anything is started or written. */
export function checkApiToken (host: string, token: string | undefined): void {
  if (token === undefined && requiresToken(host)) {
    throw new InvalidConfigError(`the API on ${host} is reachable from other machines: give it a token (--api-token-file FILE or AGENTMESH_API_TOKEN), or bind 127.0.0.1`)
  }
}

/**
 * The control API and the protocol doors, on Fastify. It takes a built node and never builds one,
 * so the same node can be served, tested and simulated. A request it cannot make sense of gets a
 * 4xx JSON answer and a count in `api.badRequests`; nothing a client sends stops the node.
 */
export class ApiServer {
  readonly server: Server
  readonly stats: ApiStats
  readonly app: FastifyInstance
  private readonly log: Logger
  private readonly graceful: GracefulClose

  private constructor (app: FastifyInstance, log: Logger, stats: ApiStats, graceful: GracefulClose) {
    this.app = app
    this.server = app.server
    this.log = log
    this.stats = stats
    this.graceful = graceful
  }

  static async listen (node: AgentNode, init: ApiServerInit = {}): Promise<ApiServer> {
    const host = init.host ?? '127.0.0.1'
    const port = init.port ?? 7070
    checkApiToken(host, init.token)
    const stats = createApiStats()
    const log = node.logger.forComponent('agentmesh:api')
    // one path for every answer that is a bug: the API's own 500s and the doors'
    const internalError = (err: unknown, what: string): void => {
      what = shortUrl(what)
      stats.internalErrors++
      log.error('%s failed: %s', what, (err as Error)?.stack ?? err)
      init.onInternalError?.(err, what)
    }
    const errors = { stats, log, internalError, retryAfterMs: () => node.tasks?.options.retryAfterMs }
    const maxBytes = init.maxBodyBytes ?? (node.tasks === undefined ? DEFAULT_MAX_BODY_BYTES : bodyLimitFor(node.tasks.options.maxInputBytes))
    const app = Fastify({
      logger: false,
      // requireHostHeader off: the onRequest check refuses a missing Host itself, with a JSON answer
      // a request (headers and body) that takes longer than requestTimeoutMs to arrive gets 408: a
      // client that sends a byte a minute held a connection and its buffer for Node's 300 s
      serverFactory: handler => {
        const requestTimeout = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
        return createServer({ requireHostHeader: false, keepAliveTimeout: init.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS, requestTimeout, headersTimeout: Math.min(60_000, requestTimeout), connectionsCheckingInterval: Math.max(100, Math.min(30_000, requestTimeout / 2)) }, handler)
      },
      clientErrorHandler: (err, socket) => { handleClientError(err, socket, stats) },
      bodyLimit: maxBytes,
      // a path part is matched before it is decoded, and the router's default cap (100) answered 414
      // to a DELETE of a memory record whose id (up to 256 characters) the POST had stored
      routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_ENCODED_PARAM_LENGTH },
      // a malformed percent-escape in the path: Fastify's own answer would not be ours
      frameworkErrors: (err, request, reply) => {
        reply.raw.setHeader(NODE_HEADER, VERSION)
        answerError(err, request, reply, errors)
      },
      // a stop answers the requests under way (GracefulClose): only idle connections close at once,
      // and a request that comes during the stop gets our 503, not Fastify's
      forceCloseConnections: 'idle',
      return503OnClosing: false
    })
    const graceful = new GracefulClose(init.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS)
    const turns = new ConnectionTurns(() => { stats.droppedAfterClose++ })
    guardServer(app.server, stats, turns, maxBytes)
    addJsonParser(app, { maxBytes, maxDepth: init.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH })
    const patterns = pathPatterns(app)

    // every error answer is counted as it leaves, whoever wrote it: the router's and the routes'
    // (answerError), a door's own JSON-RPC or OpenAI-shaped refusal, an SDK's answer on the raw
    // response (a 406 for a missing Accept); one shared listener, no closure a request
    function countErrorAnswer (this: ServerResponse): void {
      if (this.statusCode >= 400) stats.errors++
    }
    // a client that left before its answer was whole, once, whatever it waited on (a long poll, a
    // door's call or its stream): an error too. Not a socket the server refused itself, a request dropped
    // unrun, one cut by a stop, or an event stream (ended by its client, as it always is)
    function countClientGone (this: ServerResponse): void {
      if (this.writableFinished || graceful.stopping.aborted || endedByClient(this)) return
      if (turns.wasDropped(this.req) || refusedByServer(this.req.socket)) return
      stats.clientsGone++
      stats.errors++
    }
    app.addHook('onRequest', async (request, reply) => {
      turns.enter(request.raw, reply.raw)
      reply.raw.on('finish', countErrorAnswer)
      reply.raw.once('close', countClientGone)
      closeWhenAsked(request.raw, reply.raw)
      // how the CLI tells this API from another server at the address it was given; on the raw
      // answer, so that streams and the doors' SDKs, which write their own heads, carry it too
      reply.raw.setHeader(NODE_HEADER, VERSION)
      stats.requests++
      if (graceful.stopping.aborted) {
        void reply.header('connection', 'close')
        const err = new HttpError(503, 'NODE_STOPPING', 'this node is stopping: send the request to another member of the mesh')
        err.retryAfterS = 1
        throw err
      }
      graceful.track(reply.raw)
      if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) throw badRequest('no-host', 'an HTTP/1.1 request needs a Host header')
      // RFC 9112: more than one Host is a 400 (Node keeps the first, and the loopback check read only it)
      if ((request.raw.headersDistinct.host?.length ?? 0) > 1) throw badRequest('no-host', 'a request has one Host header, not several')
      // RFC 9112 §6.1: a coding applied before chunked (gzip, chunked) is not understood; its body is left unread
      // (one that does not end in chunked, Node's parser refuses as malformed)
      const coding = request.headers['transfer-encoding']
      if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') {
        void reply.header('connection', 'close')
        throw new HttpError(501, 'NOT_IMPLEMENTED', `transfer-encoding ${JSON.stringify(coding.slice(0, 100))} is not supported: send the body as it is, or chunked`, 'bad-http')
      }
      queries.set(request, parseTarget(request.raw.url ?? '').query)
      // no token means loopback only: a web page that rebinds its own name to 127.0.0.1 is same-origin
      // to the browser, but still sends its name as Host (DNS rebinding)
      const host = requestHost(request.raw.url, request.headers.host)
      if (init.token === undefined && !isLoopbackHost(host)) {
        stats.unauthorized++
        throw new HttpError(403, 'FORBIDDEN', `Host ${JSON.stringify(String(host).slice(0, 100))} is not this machine: without a token the API answers only to a Host of localhost, ::1 or a dotted 127.x.y.z address`)
      }
    })
    if (init.token !== undefined) {
      const check = authHook(init.token, stats)
      app.addHook('onRequest', async (request, reply) => {
        if (isUiAsset(request.raw.url)) return
        // RFC 9110: a 401 names the scheme it takes
        await check(request).catch((err: unknown) => { void reply.header('www-authenticate', 'Bearer realm="agentmesh"'); throw err })
      })
    }
    // a request pipelined behind an answer that closed the connection is neither run nor answered
    app.addHook('preHandler', (request, reply, done) => {
      // a callback, not an async hook: most requests wait for nothing, and pay no promise for it
      const wait = turns.waitOf(request.raw)
      if (wait === undefined) return done()
      void wait.then(run => {
        if (!run) {
          request.raw.socket.destroy()
          reply.hijack()
        }
        done()
      })
    })
    app.setErrorHandler((err, request, reply) => { answerError(err, request, reply, errors) })
    app.setNotFoundHandler((request, reply) => {
      const path = parseTarget(request.raw.url ?? '').path
      const shown = shortUrl(path)
      const other = [...new Set(patterns.methodsFor(path))]
      // RFC 9110: a 405 names the methods the path takes
      if (other.length > 0) void reply.header('allow', other.join(', '))
      const err = other.length > 0
        ? new HttpError(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${shown} (it takes ${other.join(', ')})`, 'bad-method')
        : new HttpError(404, 'NOT_FOUND', `no route ${request.method} ${shown}`, 'no-route')
      err.openAiFields = err.status === 404 && path.startsWith('/v1/')
      answerError(err, request, reply, errors)
    })

    const routes: Route[] = [...nodeRoutes(node), meshRoute(node), metricsRoute(node, stats), ...(node.tasks === undefined ? [] : layerRoutes(node.tasks, init.maxWaitMs)), ...(init.routes ?? [])]
    for (const route of routes) {
      const checkQuery = unknownQueryCheck(route)
      app.route({
        method: route.method,
        url: route.path,
        // a route that takes no body (a GET, a DELETE) reads an empty one sent as JSON as none, as one that may take none
        config: { bodyOptional: route.schema?.bodyOptional === true || route.schema?.body === undefined },
        handler: async (request, reply) => {
          const query = queries.get(request) ?? new URLSearchParams()
          checkQuery(query)
          // made on first use only: most routes answer at once
          let gone: AbortSignal | undefined
          const answer = await route.handle({
            req: request.raw,
            params: request.params as Record<string, string>,
            query,
            body: async () => route.schema?.bodyOptional === true && request.body === undefined ? undefined : bodyOf(request),
            // a stop ends a long poll too: it answers with the state it has
            gone: () => (gone ??= goneSignal(reply.raw, graceful.stopping))
          })
          return reply.code(answer.status ?? 200).send(answer.body)
        }
      })
    }
    app.route(openApiRoute(routes))
    const metrics = new MeshMetrics(node, stats)
    app.route(prometheusRoute(metrics))
    if (node.tasks !== undefined) {
      app.route(taskEventsRoute(node.tasks, init.sseMaxBufferedBytes))
      app.route(meshEventsRoute(node.tasks, init.sseMaxBufferedBytes))
      for (const route of uiRoutes()) app.route(route)
    }
    app.addHook('onClose', async () => { metrics.close() })
    if (node.tasks !== undefined && init.doors !== false) {
      const countRefusal = (err: unknown, request: FastifyRequest): void => {
        const reason = asHttpError(err, request)?.reason
        if (reason !== undefined) stats.badRequests[reason]++
      }
      for (const door of DOORS) await door(app, { node, tasks: node.tasks, log, internalError, countRefusal, stopping: graceful.stopping, options: init.doorOptions ?? {} })
    }

    try {
      await app.listen({ host, port })
    } catch (err: any) {
      await app.close().catch(() => {})
      throw apiListenError(host, port, err)
    }
    return new ApiServer(app, log, stats, graceful)
  }

  get url (): string {
    const addr = this.server.address() as AddressInfo
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    return `http://${host}:${addr.port}`
  }

  /** error answers of any kind, and requests whose client left */
  get errors (): number {
    return this.stats.errors
  }

  async close (): Promise<void> {
    await this.graceful.close(this.app)
  }
}

/** The task layer's routes and its vector memory's, whose refusals say when to come back (retryAfterMs). */
function layerRoutes (tasks: TaskLayer, maxWaitMs: number | undefined): Route[] {
  return [...taskRoutes(tasks, { maxWaitMs }), ...memoryRoutes(tasks.memory, () => tasks.options.retryAfterMs)]
}

/** Why the API could not listen on host:port, in one line. */
export function apiListenError (host: string, port: number, err: { code?: string, message?: string }): AddressInUseError {
  return err.code === 'EADDRINUSE'
    ? new AddressInUseError(`API address ${host}:${port} is already in use`)
    : new AddressInUseError(`cannot listen on API address ${host}:${port}: ${err.code ?? err.message ?? 'unknown error'}`)
}

/**
 * Refuses an API address that cannot be listened on, before a start makes anything: a start refused
 * there left a new store and node key behind (in a mistyped data dir, say). Port 0 always can.
 */
export async function checkApiAddress (host: string, port: number): Promise<void> {
  if (port === 0) return
  await new Promise<void>((resolve, reject) => {
    const probe = createNetServer()
    probe.once('error', err => { reject(apiListenError(host, port, err)) })
    probe.listen({ host, port, exclusive: true }, () => { probe.close(() => { resolve() }) })
  })
}
