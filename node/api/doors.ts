import type { AgentNode } from '../create-node.js'
import type { DoorOptions } from './door-options.js'
import type { TaskLayer } from '../tasks/task-layer.js'
import type { Logger } from '@libp2p/interface'
import type { FastifyInstance, FastifyRequest } from 'fastify'

/** What a protocol door (OpenAI, MCP, A2A) gets from the API server it is mounted on. */
export interface DoorContext {
  node: AgentNode
  /** the node's task layer: every door's work is mesh tasks */
  tasks: TaskLayer
  log: Logger
  /** an answer that is a bug (a 500, a JSON-RPC internal error): counted as `api.internalErrors` and told to the operator */
  internalError: (err: unknown, what: string) => void
  /** counts a refusal the control API would count (a repeated parameter, a body too large) under `api.badRequests`, by its reason */
  countRefusal: (err: unknown, request: FastifyRequest) => void
  /**
   * aborts when the server begins to stop: a call its stop cuts off leaves its task to run (the
   * node left, not the client), where a client's leaving cancels it
   */
  stopping: AbortSignal
  /** the doors' timers from the daemon's config (`doors`), over each door's own */
  options: DoorOptions
}

/**
 * One protocol served next to the control API, on the same server: it adds its routes to `app`.
 * The server has already checked the bearer token (when one is required) for every route.
 */
export type Door = (app: FastifyInstance, ctx: DoorContext) => void | Promise<void>

/** A door's cancel of the task whose caller left; a call cut off by this node's stop leaves its task to run (the node left, not the caller). */
export function cancelUnlessStopping (tasks: TaskLayer, stopping: AbortSignal | undefined): (id: string) => Promise<void> {
  return async id => { if (stopping?.aborted !== true) await tasks.service.cancel(id) }
}
