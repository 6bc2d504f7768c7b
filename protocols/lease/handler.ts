import { countServed, parseRequest } from '../rpc/served.js'
import { leaseRequestSchema } from './messages.js'
import type { LeaseResponse } from './messages.js'
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
    const parsed = parseRequest(leaseRequestSchema, body, options.copyRequests === true)
    if (!parsed.ok) {
      stats.badRequests++
      return { status: 'ERROR', reason: `bad request: ${parsed.reason}` }
    }
    countServed(stats, 'lease', parsed.data.op)
    return replica.handleLease(from.toString(), parsed.data)
  }
}
