import { lazily } from '../../protocols/lazy.js'
import { VERSION } from '../version.js'
import { stateOf } from '../../protocols/task/index.js'
import { MCP_PATH } from '../../protocols/mcp/constants.js'
import { errorStatus, sendError } from './fastify-glue.js'
import { badRequest, bodyOf } from './http.js'
import type { MeshBackend } from '../../protocols/mcp/server.js'
import { cancelUnlessStopping } from './doors.js'
import type { Door } from './doors.js'
import type { TaskLayer } from '../tasks/task-layer.js'
import type { FastifyReply, FastifyRequest } from 'fastify'

export interface McpDoorInit {
  /** @default 2_000 (DEFAULT_PROGRESS_INTERVAL_MS) */
  progressIntervalMs?: number
  /** @default 600_000 (DEFAULT_MAX_CALL_MS) */
  maxCallMs?: number
  /** @default 300_000 (DEFAULT_ATTEMPT_TIMEOUT_MS) */
  attemptTimeoutMs?: number
}

/** The MCP server's view of the mesh, through this node's task layer. */
export function taskLayerBackend (tasks: TaskLayer, stopping?: AbortSignal): MeshBackend {
  return {
    capabilities: async () => tasks.presence.live().flatMap(p => p.capabilities),
    submit: async (capability, input, o) => (await tasks.service.submit({ capability, input, timeoutMs: o.timeoutMs })).id,
    wait: async (id, waitMs) => {
      const view = await tasks.service.waitFor(id, waitMs)
      const state = stateOf(view.record)
      const final = view.record.final
      // a completion whose result has not reached this node yet is not done: the next wait brings it
      const done = final !== undefined && (final.state !== 'completed' || view.result !== undefined)
      return { id, state, done, result: view.result?.value, ...(final?.reason === undefined ? {} : { error: final.reason }) }
    },
    cancel: cancelUnlessStopping(tasks, stopping),
    progress: (id, listener) => tasks.progress.subscribe(id, update => { listener(update.event) }),
    ...(stopping === undefined ? {} : { stopping })
  }
}

/**
 * The MCP SDK's server and its HTTP transport, loaded on the first request to /mcp: the SDK (with
 * the JSON Schema validator it brings) is a large part of a node's memory, and most nodes are never
 * asked over MCP.
 */
async function loadMcpServer (): Promise<{ createMcpServer: typeof import('../../protocols/mcp/server.js').createMcpServer, connectMcpServer: typeof import('../../protocols/mcp/server.js').connectMcpServer, malformedRequest: typeof import('../../protocols/mcp/server.js').malformedRequest, wantsStream: typeof import('../../protocols/mcp/server.js').wantsStream, Transport: typeof import('@modelcontextprotocol/sdk/server/streamableHttp.js').StreamableHTTPServerTransport }> {
  const [server, http] = await Promise.all([import('../../protocols/mcp/server.js'), import('@modelcontextprotocol/sdk/server/streamableHttp.js')])
  return { createMcpServer: server.createMcpServer, connectMcpServer: server.connectMcpServer, malformedRequest: server.malformedRequest, wantsStream: server.wantsStream, Transport: http.StreamableHTTPServerTransport }
}

/**
 * MCP over Streamable HTTP at /mcp, stateless: each POST gets a fresh server and transport, so any
 * node answers any request and nothing is kept between them. There is no server-initiated stream
 * (GET) and no session to end (DELETE): both answer 405, as the transport's spec allows.
 */
export function createMcpDoor (init: McpDoorInit = {}): Door {
  return (app, ctx) => {
    const backend = taskLayerBackend(ctx.tasks, ctx.stopping)
    const log = ctx.log
    // the body is parsed before the transport sees it: its refusals are answered as JSON-RPC too
    app.register(async scope => {
      scope.setErrorHandler((err: any, request: FastifyRequest, reply: FastifyReply) => {
        const status = errorStatus(err)
        // a missing token or a foreign Host is the API's own answer, the same on every route
        if (status === 401 || status === 403) return void reply.code(status).send({ error: { name: err.code ?? 'UNAUTHORIZED', message: String(err.message) } })
        if (status >= 500) ctx.internalError(err, `${request.method} ${request.url}`)
        // the control API's own refusals (a body that is not JSON, a repeated parameter) count where they do on every route
        else ctx.countRefusal(err, request)
        const code = err?.reason === 'not-json' || err?.reason === 'too-deep' ? -32700 : status >= 500 ? -32603 : -32600
        sendError(request, reply, status, { jsonrpc: '2.0', error: { code, message: String(err?.message ?? 'bad request') }, id: null })
      })
      scope.post(MCP_PATH, handle)
    })
    const sdk = lazily(loadMcpServer)
    async function handle (request: FastifyRequest, reply: FastifyReply): Promise<void> {
      const { createMcpServer, connectMcpServer, malformedRequest, wantsStream, Transport } = await sdk()
      // no body at all (no content-type, or an empty one) is the API's own refusal, answered by the scope's handler
      const malformed = malformedRequest(bodyOf(request))
      if (malformed !== undefined) {
        ctx.countRefusal(badRequest('door', malformed.message), request)
        const id = (request.body as { id?: unknown } | null)?.id
        void reply.code(malformed.code === -32600 ? 400 : 200).send({ jsonrpc: '2.0', id: typeof id === 'string' || typeof id === 'number' ? id : null, error: malformed })
        return
      }
      // the transport writes the answer (JSON, or an SSE stream for a call that wants progress) to the raw response itself
      reply.hijack()
      const server = createMcpServer(backend, { version: VERSION, ...init, ...ctx.options.mcp, log, onRefused: message => { ctx.countRefusal(badRequest('door', message), request) } })
      const transport = new Transport({ sessionIdGenerator: undefined, enableJsonResponse: !wantsStream(request.body) })
      reply.raw.on('close', () => {
        void transport.close()
        void server.close()
      })
      try {
        await connectMcpServer(server, transport)
        await transport.handleRequest(request.raw, reply.raw, request.body)
      } catch (err: any) {
        ctx.internalError(err, `${request.method} ${request.url}`)
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(500, { 'content-type': 'application/json' })
          reply.raw.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null }))
        }
      }
    }
    const notAllowed = async (_request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      await reply.code(405).header('allow', 'POST').send({ jsonrpc: '2.0', error: { code: -32000, message: 'method not allowed: this server is stateless, POST only' }, id: null })
    }
    // every other method alike, so that the 405's Allow says POST whatever the method
    // answered before the body is parsed: a DELETE that says JSON and sends none got a 400 for its body
    app.route({ method: ['GET', 'DELETE', 'PUT', 'PATCH', 'OPTIONS'], url: MCP_PATH, onRequest: notAllowed, handler: notAllowed })
  }
}

/** The /mcp door with its default timers. */
export const mcpDoor: Door = createMcpDoor()
