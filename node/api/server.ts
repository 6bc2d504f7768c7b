import { createServer } from 'node:http'
import { AddressInUseError } from '../errors.js'
import { readJsonBody } from './body.js'
import { guardServer } from './guards.js'
import { HttpError, badRequest, compileRoutes, matchRoute, parseTarget, sendJson } from './http.js'
import { metricsRoute, nodeRoutes } from './node-routes.js'
import { createApiStats } from './stats.js'
import { taskRoutes } from './task-routes.js'
import type { Route } from './http.js'
import type { ApiStats } from './stats.js'
import type { AgentNode } from '../create-node.js'
import type { Logger } from '@libp2p/interface'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ApiServerInit {
  /** @default '127.0.0.1' */
  host?: string
  /** 0 picks a free port. @default 7070 */
  port?: number
  /**
   * Largest request body accepted; larger ones get 413.
   * @default 2_097_152 (2 MiB: a 1 MiB task input as JSON, with room to spare)
   */
  maxBodyBytes?: number
  /**
   * Deepest nesting of arrays and objects accepted in a body (the body itself is level 1);
   * deeper ones get 400 before they are parsed.
   * @default 100
   */
  maxJsonDepth?: number
  /** routes added by later layers (tasks, dead letters) */
  routes?: Route[]
}

export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
export const DEFAULT_MAX_JSON_DEPTH = 100

/**
 * The control API: HTTP and JSON. It takes a built node and never builds one, as js-libp2p's
 * daemon server does, so the same node can be served, tested and simulated. A request it cannot
 * make sense of gets a 4xx JSON answer and a count in `api.badRequests`; nothing a client sends
 * stops the node.
 */
export class ApiServer {
  readonly server: Server
  readonly stats: ApiStats
  private readonly log: Logger
  private requestErrors = 0

  private constructor (server: Server, log: Logger, stats: ApiStats) {
    this.server = server
    this.log = log
    this.stats = stats
  }

  static async listen (node: AgentNode, init: ApiServerInit = {}): Promise<ApiServer> {
    const stats = createApiStats()
    const routes = compileRoutes([...nodeRoutes(node), metricsRoute(node, stats), ...(node.tasks === undefined ? [] : taskRoutes(node.tasks)), ...(init.routes ?? [])])
    const limits = { maxBytes: init.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, maxDepth: init.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH }
    const log = node.logger.forComponent('agentmesh:api')
    let api: ApiServer | undefined

    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      stats.requests++
      // Node's own check would answer 400 with an empty body; this one says why, in JSON
      if (req.httpVersion === '1.1' && req.headers.host === undefined) throw badRequest('no-host', 'an HTTP/1.1 request needs a Host header')
      const { path, query } = parseTarget(req.url ?? '')
      const { route, params } = matchRoute(routes, req.method ?? '', path)
      const reply = await route.handle({ req, params, query, body: async () => readJsonBody(req, limits) })
      sendJson(res, reply.status ?? 200, reply.body)
    }

    const fail = (req: IncomingMessage, res: ServerResponse, err: any): void => {
      if (api !== undefined) api.requestErrors++
      // the client left (mid-body or mid-poll): nobody to answer, and not the node's fault
      if (res.destroyed || res.headersSent || err?.code === 'ECONNRESET') {
        stats.clientsGone++
        log('%s %s: client gone: %s', req.method, req.url, err?.message ?? err)
        if (!res.destroyed) res.destroy()
        return
      }
      if (err instanceof HttpError) {
        if (err.reason !== undefined) stats.badRequests[err.reason]++
        // a body left unread on purpose (too large, not JSON) is not drained: close instead
        const close = err.status === 413 || err.status === 415
        sendJson(res, err.status, { error: { name: err.code, message: err.message } }, close ? { connection: 'close' } : {})
        if (close) res.once('finish', () => req.destroy())
        return
      }
      stats.internalErrors++
      log.error('%s %s failed: %s', req.method, req.url, err?.stack ?? err)
      sendJson(res, 500, { error: { name: 'INTERNAL', message: String(err?.message ?? err) } })
    }

    // requireHostHeader off: the handler refuses a missing Host itself, with a JSON answer
    const server = createServer({ requireHostHeader: false }, (req, res) => {
      // everything inside the promise, so even a synchronous throw becomes an answer, never a crash
      handle(req, res).catch((err: unknown) => { fail(req, res, err) })
    })
    guardServer(server, stats)
    const host = init.host ?? '127.0.0.1'
    const port = init.port ?? 7070
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: any) => {
        reject(err.code === 'EADDRINUSE'
          ? new AddressInUseError(`API address ${host}:${port} is already in use`)
          : new Error(`cannot listen on API address ${host}:${port}: ${err.code ?? err.message}`))
      })
      server.listen(port, host, () => { resolve() })
    })
    api = new ApiServer(server, log, stats)
    return api
  }

  get url (): string {
    const addr = this.server.address() as AddressInfo
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    return `http://${host}:${addr.port}`
  }

  /** error answers of any kind, and requests whose client left */
  get errors (): number {
    return this.requestErrors
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => { this.server.close(() => { resolve() }) })
  }
}
