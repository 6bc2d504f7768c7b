import { countServed } from '../rpc/served.js'
import { leaseRequestSchema } from './messages.js'
import { NOT_JSON, copyJson } from '../task/json-value.js'
import type { LeaseRequest, LeaseResponse } from './messages.js'
import type { ServedStats } from '../rpc/served.js'
import type { Replica } from '../replica/replica.js'
import type { PeerId } from '@libp2p/interface'

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
    const parsed = options.copyRequests === true ? ownRequest<LeaseRequest>(body) : leaseRequestSchema.safeParse(body)
    if (!parsed.success) {
      stats.badRequests++
      return { status: 'ERROR', reason: `bad request: ${parsed.error.issues[0]?.message ?? 'invalid'}` }
    }
    countServed(stats, 'lease', parsed.data.op)
    return replica.handleLease(from.toString(), parsed.data)
  }
}

/**
 * This node's own request, shaped by its typed code: only the values in it (an agent's result, a
 * journal step, a subtask's input) can be other than the schema says, so it is checked as JSON and
 * copied as the wire would carry it, in one walk, instead of parsed by the schema and then cloned.
 */
export function ownRequest<T> (body: unknown): { success: true, data: T } | { success: false, error: { issues: Array<{ message: string }> } } {
  const copy = copyJson(body)
  if (copy === NOT_JSON || typeof copy !== 'object' || copy === null) return { success: false, error: { issues: [{ message: 'not a JSON value (strings, finite numbers, booleans, null, arrays and plain objects)' }] } }
  return { success: true, data: copy as T }
}
