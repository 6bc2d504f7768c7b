import { countServed } from '../rpc/served.js'
import { leaseRequestSchema } from './messages.js'
import { NOT_JSON, copyJson } from '../task/json-value.js'
import type { LeaseResponse } from './messages.js'
import type { ServedStats } from '../rpc/served.js'
import type { Replica } from '../replica/replica.js'
import type { PeerId } from '@libp2p/interface'
import type { ZodType } from 'zod'

export interface HandlerStats extends ServedStats {
  badRequests: number
}

/**
 * The server side of `/agentmesh/lease/1.0.0`: a malformed request gets status ERROR, never a crash.
 * `copyRequests`: for this node's own requests, whose values (results, journal steps) are the
 * agent's own objects: the replica keeps a copy, not what the agent may still change.
 */
export function leaseHandler (replica: Replica, stats: HandlerStats, options: { copyRequests?: boolean } = {}) {
  return async (body: unknown, from: PeerId): Promise<LeaseResponse> => {
    const parsed = parseRequest(leaseRequestSchema, body, options.copyRequests === true)
    if (!parsed.ok) {
      stats.badRequests++
      return { status: 'ERROR', reason: `bad request: ${parsed.reason}` }
    }
    countServed(stats, 'lease', parsed.data.op)
    return replica.handleLease(from.toString(), parsed.data)
  }
}

/** Levels a request nests above the values it carries: they are held to MAX_JSON_DEPTH by the schema. */
const REQUEST_NESTING = 8

export type ParsedRequest<T> = { ok: true, data: T } | { ok: false, reason: string }

/**
 * A request checked against its schema. `own`: this node's own request, whose values (an agent's
 * result, a journal step, a subtask's input) are the agent's own objects: copied as the wire would
 * carry them, checked as JSON in the same walk, then held to the schema like a peer's (this member
 * must refuse what the others refuse). A structured clone after the parse cost twice the copy.
 */
export function parseRequest<T> (schema: ZodType<T>, body: unknown, own: boolean): ParsedRequest<T> {
  const value = own ? copyJson(body, -REQUEST_NESTING) : body
  if (value === NOT_JSON) return { ok: false, reason: 'not a JSON value (strings, finite numbers, booleans, null, arrays and plain objects)' }
  const parsed = schema.safeParse(value)
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, reason: parsed.error.issues[0]?.message ?? 'invalid' }
}
