import { A2A_PROTOCOL_VERSION, SSE_HEADERS, formatSSEErrorEvent, formatSSEEvent } from '@a2a-js/sdk'
import { A2A_LEGACY_PROTOCOL_VERSION } from '@a2a-js/sdk/compat/v0_3'
import { LegacyJsonRpcTransportHandler } from '@a2a-js/sdk/compat/v0_3/server'
import { PushNotificationNotSupportedError } from '@a2a-js/sdk/errors'
import { JsonRpcTransportHandler, ServerCallContext, validateVersion } from '@a2a-js/sdk/server'
import { agentCard, legacyAgentCard, skillsOf } from './card.js'
import { MeshRequestHandler, NO_PUSH, RETRY_KEY, SIGNAL_KEY, isMeshRefusal } from './handler.js'
import { INTERNAL_ERROR, INVALID_REQUEST } from './json-rpc.js'
import { checkEnvelope } from './rpc.js'
import { retryAfterSeconds } from '../retry-after.js'
import type { A2ADoorContext, A2ADoorInit, A2AStats } from './door.js'
import type { MeshHandlerInit } from './handler.js'
import type { RpcError, RpcId } from './json-rpc.js'
import type { Logger } from '@libp2p/interface'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** What the door's answers need: the node, the door's settings and its counters. */
export interface Served {
  ctx: A2ADoorContext
  init: A2ADoorInit
  handlerInit: MeshHandlerInit
  count: (error: RpcError | undefined) => void
  stats: A2AStats
}

type RpcAnswer = { jsonrpc: string, id: RpcId, result?: unknown, error?: unknown }

const cardFor = (request: FastifyRequest, s: Served): ReturnType<typeof agentCard> => agentCard(baseOf(request), skillsOf(s.ctx.tasks.presence.live()), s.init)

/** The agent card, at both of its paths. */
export async function serveCard (request: FastifyRequest, reply: FastifyReply, s: Served): Promise<unknown> {
  const card = cardFor(request, s)
  // the skills follow the mesh: never cached; the shape follows the version the client asks for
  void reply.header('cache-control', 'no-cache').header('vary', 'A2A-Version')
  return wantsV1(request) ? card : legacyAgentCard(card)
}

/** Push notification configs, in 0.3's and 1.0's names: none is kept, whatever the params. */
const PUSH_CONFIG_METHODS = new Set(['tasks/pushNotificationConfig/set', 'tasks/pushNotificationConfig/get', 'tasks/pushNotificationConfig/list', 'tasks/pushNotificationConfig/delete', 'CreateTaskPushNotificationConfig', 'GetTaskPushNotificationConfig', 'ListTaskPushNotificationConfigs', 'DeleteTaskPushNotificationConfig'])

/** One JSON-RPC request to /a2a, answered by the SDK's transport handlers over MeshRequestHandler. */
export async function serveRpc (request: FastifyRequest, reply: FastifyReply, s: Served): Promise<unknown> {
  const envelope = checkEnvelope(request.body)
  // JSON-RPC 2.0: a notification (a request without an id) is never answered, not even its
  // errors; a request too malformed to tell is answered with id null
  const body = request.body
  const notification = typeof body === 'object' && body !== null && !Object.hasOwn(body, 'id') && (envelope.ok || envelope.error.code !== INVALID_REQUEST)
  if (!envelope.ok) {
    s.count(envelope.error)
    if (notification) return await reply.code(204).send()
    return await reply.send({ jsonrpc: '2.0', id: envelope.id, error: envelope.error })
  }
  const abort = new AbortController()
  const header = request.headers['a2a-version']
  const requestedVersion = typeof header === 'string' && header !== '' ? header : (envelope.legacy ? A2A_LEGACY_PROTOCOL_VERSION : A2A_PROTOCOL_VERSION)
  const context = new ServerCallContext({ requestedVersion, state: new Map([[SIGNAL_KEY, abort.signal]]) })
  const card = cardFor(request, s)
  const mapError = envelope.legacy ? LegacyJsonRpcTransportHandler.mapToLegacyJSONRPCError : JsonRpcTransportHandler.mapToJSONRPCError
  try {
    validateVersion(requestedVersion, card, 'JSONRPC')
    // refused before the SDK reads params it assumes: a set without its config was a TypeError (-32603)
    if (PUSH_CONFIG_METHODS.has(envelope.method)) throw new PushNotificationNotSupportedError(NO_PUSH)
  } catch (err) {
    const error = mapError(err)
    s.count(error)
    if (notification) return await reply.code(204).send()
    return await reply.send({ jsonrpc: '2.0', id: envelope.id, error })
  }
  const handler = new MeshRequestHandler(s.ctx.tasks, card, s.handlerInit, !envelope.legacy)
  const transport = envelope.legacy ? new LegacyJsonRpcTransportHandler(handler) : new JsonRpcTransportHandler(handler)
  const sent = body as Record<string, unknown>
  // a notification's sender waits for nothing: its send does not wait for the task
  const answer = await transport.handle(notification ? withoutWaiting(sent) : envelope.legacy ? blockingByDefault(sent) : sent, context)
  if (notification) {
    // a stream nobody reads is not run: its events would go nowhere
    if (isStream(answer)) await answer.return(undefined)
    else s.count(answer.error as RpcError | undefined)
    return await reply.code(204).send()
  }
  if (isStream(answer)) {
    await stream(reply, answer, { id: envelope.id, method: envelope.method, call: context, abort, mapError, count: s.count, stats: s.stats, log: s.ctx.log, internalError: s.ctx.internalError })
    return
  }
  const error = answer.error as RpcError | undefined
  s.count(error)
  if (error?.code === INTERNAL_ERROR && !isMeshRefusal(error.message)) s.ctx.internalError(new Error(error.message), `a2a ${envelope.method}`)
  if (error !== undefined) sayWhenToRetry(reply, context)
  return await reply.send(answer)
}

/** A refused submit's answer says when to retry, as the API's 429 does (HTTP 200 all the same: JSON-RPC). */
function sayWhenToRetry (reply: FastifyReply, context: ServerCallContext): void {
  const retryAfterMs = context.state.get(RETRY_KEY)
  if (typeof retryAfterMs === 'number') void reply.header('retry-after', String(retryAfterSeconds(retryAfterMs)))
}

/** A send that answers once the task is stored: `blocking: false` in 0.3, `returnImmediately` in 1.0. */
function withoutWaiting (body: Record<string, unknown>): Record<string, unknown> {
  const params = body.params
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return body
  const given = (params as { configuration?: unknown }).configuration
  const configuration = typeof given === 'object' && given !== null && !Array.isArray(given) ? given : {}
  if (body.method === 'message/send') return { ...body, params: { ...params, configuration: { ...configuration, blocking: false } } }
  if (body.method === 'SendMessage') return { ...body, params: { ...params, configuration: { ...configuration, returnImmediately: true } } }
  return body
}

/**
 * A2A 0.3's `message/send` waits unless `configuration.blocking` is false. The SDK's translation to
 * 1.0 reads a configuration without `blocking` as `returnImmediately: true` (and no configuration
 * as a wait): such a request is given `blocking: true`.
 */
function blockingByDefault (body: Record<string, unknown>): Record<string, unknown> {
  const params = body.params as { configuration?: unknown } | undefined
  const configuration = params?.configuration
  if (body.method !== 'message/send' || typeof configuration !== 'object' || configuration === null || Array.isArray(configuration)) return body
  if ((configuration as { blocking?: unknown }).blocking !== undefined) return body
  return { ...body, params: { ...params, configuration: { ...configuration, blocking: true } } }
}

/** This node as the client reached it: the card's endpoint URL. */
function baseOf (request: FastifyRequest): string {
  // a Host that is no authority (a port past 65535) named a URL no client could use; one in an odd
  // form (127.000.000.001) is written as a URL writes it. Only an HTTP/1.0 request may lack a Host:
  // for both, the address the request came in on
  let host: string | undefined
  try {
    if (request.headers.host !== undefined) host = new URL(`${request.protocol}://${request.headers.host}`).host
  } catch {}
  const socket = request.raw.socket
  const local = socket.localFamily === 'IPv6' ? `[${String(socket.localAddress)}]` : String(socket.localAddress)
  return `${request.protocol}://${host ?? `${local}:${String(socket.localPort)}`}`
}

/** A client that asks for A2A 1.0 gets the 1.0 card; one that does not say gets 0.3's shape. */
function wantsV1 (request: FastifyRequest): boolean {
  const v = request.headers['a2a-version']
  return typeof v === 'string' && /^1(\.|$)/.test(v.trim())
}

function isStream (answer: RpcAnswer | AsyncGenerator<RpcAnswer>): answer is AsyncGenerator<RpcAnswer> {
  return typeof (answer as any)?.[Symbol.asyncIterator] === 'function'
}

interface StreamContext {
  id: RpcId
  method: string
  /** the call's context: a submit refused before the first event left its Retry-After there */
  call: ServerCallContext
  log: Logger
  abort: AbortController
  mapError: (err: unknown) => RpcError
  count: (error: RpcError | undefined) => void
  stats: A2AStats
  internalError: (err: unknown, what: string) => void
}

/**
 * An SSE answer, one JSON-RPC response per event. An error before the first event (an unknown
 * skill, say) is a plain JSON-RPC answer instead; an error later is a last `event: error`.
 */
async function stream (reply: FastifyReply, events: AsyncGenerator<RpcAnswer>, s: StreamContext): Promise<void> {
  let next: IteratorResult<RpcAnswer>
  try {
    next = await events.next()
  } catch (err) {
    const error = s.mapError(err)
    s.count(error)
    sayWhenToRetry(reply, s.call)
    await reply.send({ jsonrpc: '2.0', id: s.id, error })
    return
  }
  s.stats.streams++
  reply.hijack()
  const res = reply.raw
  // the client left: the handler stops following the task (the task itself runs on)
  res.on('close', () => { s.abort.abort() })
  res.writeHead(200, SSE_HEADERS)
  try {
    while (next.done !== true && !res.destroyed) {
      res.write(formatSSEEvent(next.value))
      next = await events.next()
    }
  } catch (err) {
    const error = s.mapError(err)
    s.count(error)
    if (error.code === INTERNAL_ERROR && !isMeshRefusal(error.message)) s.internalError(err, `a2a ${s.method} (mid-stream)`)
    if (!res.destroyed) res.write(formatSSEErrorEvent({ jsonrpc: '2.0', id: s.id, error }))
  } finally {
    await events.return(undefined).catch(() => {})
    if (!res.destroyed) res.end()
  }
}
