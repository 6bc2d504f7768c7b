import { lazily } from '../lazy.js'
import { A2A_PATH, AGENT_CARD_PATH, DEFAULT_A2A_ATTEMPT_TIMEOUT_MS, DEFAULT_HISTORY_BYTES, DEFAULT_SEND_WAIT_MS, DEFAULT_STATUS_POLL_MS, OLD_AGENT_CARD_PATH } from './constants.js'
import { MessageHistory } from './history.js'
import { CLIENT_FAULTS, PARSE_ERROR } from './json-rpc.js'
import type { CardInit } from './card.js'
import type { A2AMesh } from './handler.js'
import type { RpcError } from './json-rpc.js'
import type { Logger } from '@libp2p/interface'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

export interface A2ADoorInit extends CardInit {
  /** how long a blocking message/send waits for the task to finish. @default 60_000 (DEFAULT_SEND_WAIT_MS) */
  sendWaitMs?: number
  /** how often a stream reads the task's state, at most. @default 500 (DEFAULT_STATUS_POLL_MS) */
  statusPollMs?: number
  /** bytes of the messages that started tasks kept for their history, newest first. @default 8 MiB (DEFAULT_HISTORY_BYTES) */
  historyBytes?: number
  /** each attempt's timeout, for a message's task. @default 300_000 (DEFAULT_A2A_ATTEMPT_TIMEOUT_MS) */
  attemptTimeoutMs?: number
}

/** What the door needs from the API server it is mounted on (a DoorContext fits). */
export interface A2ADoorContext {
  tasks: A2AMesh
  log: Logger
  /** an internal error: a bug, counted and told to the operator */
  internalError: (err: unknown, what: string) => void
  /** timers from the daemon's config, over the door's own */
  options?: { a2a?: Pick<A2ADoorInit, 'sendWaitMs' | 'statusPollMs' | 'historyBytes' | 'attemptTimeoutMs'> }
}

/** Counters of the A2A door. */
export interface A2AStats {
  /** JSON-RPC requests to /a2a */
  requests: number
  /** of which answered as an SSE stream */
  streams: number
  /** answered with a JSON-RPC error that says the request was at fault (-32700, -32600, -32601, -32602) */
  badRequests: number
  /** answered with any other JSON-RPC error (task not found, not cancelable, internal, ...) */
  errors: number
}

export type A2ADoor = ((app: FastifyInstance, ctx: A2ADoorContext) => void) & { stats: A2AStats }

/**
 * The answers, with the A2A SDK they are made by, loaded on the first request to the door: the SDK
 * is a part of a node's memory that most nodes, never asked over A2A, do not need.
 */
const answers = lazily(async () => await import('./serve.js'))

/**
 * The agent card at /.well-known/agent-card.json (and the older agent.json) and A2A's JSON-RPC
 * endpoint at /a2a, served by the SDK's transport handlers over MeshRequestHandler: this file is
 * only the HTTP glue Fastify needs (the SDK's own glue is for Express).
 */
export function createA2ADoor (init: A2ADoorInit): A2ADoor {
  const stats: A2AStats = { requests: 0, streams: 0, badRequests: 0, errors: 0 }
  const count = (error: RpcError | undefined): void => {
    if (error === undefined) return
    if (CLIENT_FAULTS.has(error.code)) stats.badRequests++
    else stats.errors++
  }

  const door = (app: FastifyInstance, ctx: A2ADoorContext): void => {
    const timers = { ...init, ...ctx.options?.a2a }
    const handlerInit = { sendWaitMs: timers.sendWaitMs ?? DEFAULT_SEND_WAIT_MS, statusPollMs: timers.statusPollMs ?? DEFAULT_STATUS_POLL_MS, attemptTimeoutMs: timers.attemptTimeoutMs ?? DEFAULT_A2A_ATTEMPT_TIMEOUT_MS, history: new MessageHistory(timers.historyBytes ?? DEFAULT_HISTORY_BYTES) }
    const served = { ctx, init, handlerInit, count, stats }
    const card = async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => (await answers()).serveCard(request, reply, served)
    app.get(AGENT_CARD_PATH, card)
    app.get(OLD_AGENT_CARD_PATH, card)

    app.post(A2A_PATH, {
      // a body that is not JSON is a JSON-RPC parse error; any other refusal (401, 413, 415) stays the API's
      errorHandler: (err: any, _request, reply) => {
        if (err?.reason !== 'not-json' && err?.reason !== 'too-deep') throw err
        stats.requests++
        const error = { code: PARSE_ERROR, message: `parse error: ${String(err.message)}` }
        count(error)
        void reply.code(200).send({ jsonrpc: '2.0', id: null, error })
      }
    }, async (request, reply) => {
      stats.requests++
      return await (await answers()).serveRpc(request, reply, served)
    })
  }
  return Object.assign(door, { stats })
}

