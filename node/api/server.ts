import { createServer } from 'node:http'
import { AddressInUseError } from '../errors.js'
import { HttpError, compileRoutes, matchRoute, readJsonBody, sendJson } from './http.js'
import { nodeRoutes } from './node-routes.js'
import { taskRoutes } from './task-routes.js'
import type { Route } from './http.js'
import type { AgentNode } from '../create-node.js'
import type { Logger } from '@libp2p/interface'
import type { Server } from 'node:http'
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
  /** routes added by later layers (tasks, dead letters) */
  routes?: Route[]
}

/**
 * The control API: HTTP and JSON. It takes a built node and never builds one, as js-libp2p's
 * daemon server does, so the same node can be served, tested and simulated.
 */
export class ApiServer {
  readonly server: Server
  private readonly log: Logger
  private requestErrors = 0

  private constructor (server: Server, log: Logger) {
    this.server = server
    this.log = log
  }

  static async listen (node: AgentNode, init: ApiServerInit = {}): Promise<ApiServer> {
    const routes = compileRoutes([...nodeRoutes(node), ...(node.tasks === undefined ? [] : taskRoutes(node.tasks)), ...(init.routes ?? [])])
    const maxBodyBytes = init.maxBodyBytes ?? 2 * 1024 * 1024
    const log = node.logger.forComponent('agentmesh:api')
    let api: ApiServer | undefined
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      const run = async (): Promise<void> => {
        const { route, params } = matchRoute(routes, req.method ?? 'GET', url.pathname)
        const reply = await route.handle({ req, params, query: url.searchParams, body: async () => readJsonBody(req, maxBodyBytes) })
        sendJson(res, reply.status ?? 200, reply.body)
      }
      run().catch((err: any) => {
        if (api !== undefined) api.requestErrors++
        if (err instanceof HttpError) {
          sendJson(res, err.status, { error: { name: err.code, message: err.message } })
          // the rest of an oversized body is not read: close so the client does not stall on it
          if (err.status === 413) res.once('finish', () => req.destroy())
          return
        }
        log.error('%s %s failed: %s', req.method, url.pathname, err?.stack ?? err)
        sendJson(res, 500, { error: { name: 'INTERNAL', message: String(err?.message ?? err) } })
      })
    })
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
    api = new ApiServer(server, log)
    return api
  }

  get url (): string {
    const addr = this.server.address() as AddressInfo
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    return `http://${host}:${addr.port}`
  }

  get errors (): number {
    return this.requestErrors
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => { this.server.close(() => { resolve() }) })
  }
}
