import { stateOf } from '../../protocols/task/index.js'
import { OPENAI_PREFIX, TASK_HEADER } from '../../protocols/openai/constants.js'
import { OpenAIError } from '../../protocols/openai/errors.js'
import { OpenAIGateway, emptyGatewayStats } from '../../protocols/openai/gateway.js'
import { asHttpError, errorStatus, sendError } from './fastify-glue.js'
import { retryAfterSeconds } from '../../protocols/retry-after.js'
import type { GatewayBackend, GatewayInit, GatewayStats } from '../../protocols/openai/gateway.js'
import { cancelUnlessStopping } from './doors.js'
import type { Door } from './doors.js'
import type { TaskLayer } from '../tasks/task-layer.js'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

export type OpenAIDoorInit = Omit<GatewayInit, 'log'>

/** The door, with the counters of the gateways it serves, summed (for /v1/metrics). */
export type OpenAIDoor = Door & { stats: () => GatewayStats }

/** The gateway's view of the mesh, through this node's task layer. */
export function taskLayerGatewayBackend (tasks: TaskLayer, stopping?: AbortSignal): GatewayBackend {
  return {
    peers: () => tasks.presence.live(),
    submit: async (capability, input, o) => (await tasks.service.submit({ capability, input, timeoutMs: o.timeoutMs, deadlineMs: o.deadlineMs })).id,
    wait: async (id, waitMs) => {
      const view = await tasks.service.waitFor(id, waitMs)
      const final = view.record.final
      if (final === undefined) return { done: false }
      if (final.state === 'completed') {
        // completed, but its result has not reached this node yet: the next wait brings it
        return view.result === undefined ? { done: false } : { done: true, state: 'completed', result: view.result.value }
      }
      return { done: true, state: final.state, error: final.reason ?? lastError(view.record) }
    },
    cancel: cancelUnlessStopping(tasks, stopping),
    subscribe: (id, listener) => tasks.progress.subscribe(id, listener),
    stopping
  }
}

/** The last attempt's error: a dead task's own reason may only say it ran out of attempts. */
function lastError (record: Parameters<typeof stateOf>[0]): string | undefined {
  return [...record.attempts].reverse().find(a => a.error !== undefined)?.error
}

/**
 * `GET /v1/models`, `GET /v1/models/:model` and `POST /v1/chat/completions`, in OpenAI's shapes,
 * errors included (`{error: {message, type, param, code}}`), on the node's API server. Every route
 * here answers its own errors: a malformed body is a 400 in OpenAI's shape, not the control API's.
 */
export function createOpenAIDoor (init: OpenAIDoorInit = {}): OpenAIDoor {
  // one per API server using the door (a process runs one; a test may run several)
  const gateways = new Set<OpenAIGateway>()
  const door: Door = async (app, ctx) => {
    const g = new OpenAIGateway(taskLayerGatewayBackend(ctx.tasks, ctx.stopping), { ...init, ...ctx.options.openai, log: ctx.log })
    gateways.add(g)
    app.addHook('onClose', async () => { gateways.delete(g) })
    await app.register(async scope => {
      scope.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
        // nobody to answer (counted by the gateway); the task was canceled
        if (err?.name === 'ClientGoneError') {
          if (!reply.raw.destroyed) reply.raw.destroy()
          return
        }
        const answer = asOpenAIError(err, request)
        // a 500 is a bug; the door's own 5xx (the mesh or the model unavailable) are not
        if (answer.status === 500 && !(err instanceof OpenAIError)) ctx.internalError(err, `${request.method} ${request.url}`)
        else if (answer.status >= 500) ctx.log.error('%s %s failed: %s', request.method, request.url, err?.stack ?? err)
        else if (!(err instanceof OpenAIError)) {
          g.stats.badRequests++
          // the control API's own refusals (a repeated parameter, a body too large) count where they do on every route
          ctx.countRefusal(err, request)
        }
        if (reply.raw.headersSent || reply.raw.destroyed) return
        // a refusal to come back from says when: the error's own wait, else the node's
        const retryAfterMs = answer.retryAfterMs ?? (answer.status === 429 || answer.status === 503 ? ctx.tasks.options.retryAfterMs : undefined)
        if (retryAfterMs !== undefined) void reply.header('retry-after', String(retryAfterSeconds(retryAfterMs)))
        sendError(request, reply, answer.status, answer.toJSON())
      })
      // the router ignores a trailing slash, but `/models/` is the client's retrieve of the model '' (404), not the list
      scope.get('/models', async request => request.url.split('?')[0]?.endsWith('/') === true ? g.model('') : g.models())
      scope.get('/models/:model', async request => g.model((request.params as { model: string }).model))
      scope.post('/chat/completions', async (request, reply) => {
        const { req, id, meta, deadline } = await g.start(request.body)
        if (req.stream === true) {
          // the gateway writes the server-sent events to the raw response itself, once it has a
          // token (or its hold is over); a task that fails before is thrown, answered as an error here
          await g.stream(req, id, meta, deadline, reply.raw, () => { reply.hijack() })
          return
        }
        const body = await g.complete(id, meta, deadline, reply.raw)
        return reply.header(TASK_HEADER, id).send(body)
      })
    }, { prefix: OPENAI_PREFIX })
  }
  const stats = (): GatewayStats => {
    const sum = emptyGatewayStats()
    for (const g of gateways) for (const k of Object.keys(sum) as Array<keyof GatewayStats>) sum[k] += g.stats[k]
    return sum
  }
  return Object.assign(door, { stats })
}

/**
 * Any error of a route here, as OpenAI would answer it: the framework's own (415, 413, bad JSON)
 * included, with the messages and codes the control API gives them (a body over the API's limit
 * is `request_too_large`, as a task input over the task limit is).
 */
export function asOpenAIError (err: any, request: FastifyRequest): OpenAIError {
  if (err instanceof OpenAIError) return err
  // the control API's parser throws HttpError (status), Fastify its own errors (statusCode)
  const http = asHttpError(err, request)
  const status = http?.status ?? errorStatus(err)
  const message = String(http?.message ?? err?.message ?? 'bad request')
  if (status === 401) return new OpenAIError(401, message, { code: 'invalid_api_key' })
  if (status >= 400 && status < 500) return new OpenAIError(status, message, { code: status === 400 ? 'invalid_request' : status === 413 ? 'request_too_large' : http?.code.toLowerCase() ?? null })
  // the API's own 5xx (a stopping node's 503) is an answer, with its wait: only anything else is a bug's 500
  if (http !== undefined) return new OpenAIError(http.status, message, { type: 'api_error', code: http.code.toLowerCase(), ...(http.retryAfterS === undefined ? {} : { retryAfterMs: http.retryAfterS * 1000 }) })
  return new OpenAIError(500, 'internal error', { code: 'internal_error' })
}

/** The OpenAI door with its default timers. */
export const openaiDoor: OpenAIDoor = createOpenAIDoor()
