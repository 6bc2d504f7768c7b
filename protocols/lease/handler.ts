import { countServed } from '../rpc/served.js'
import { leaseRequestSchema } from './messages.js'
import type { LeaseResponse } from './messages.js'
import type { ServedStats } from '../rpc/served.js'
import type { Replica } from '../replica/replica.js'
import type { PeerId } from '@libp2p/interface'

export interface HandlerStats extends ServedStats {
  badRequests: number
}

/** The server side of `/agentmesh/lease/1.0.0`: a malformed request gets status ERROR, never a crash. */
export function leaseHandler (replica: Replica, stats: HandlerStats) {
  return async (body: unknown, from: PeerId): Promise<LeaseResponse> => {
    const parsed = leaseRequestSchema.safeParse(body)
    if (!parsed.success) {
      stats.badRequests++
      return { status: 'ERROR', reason: `bad request: ${parsed.error.issues[0]?.message ?? 'invalid'}` }
    }
    countServed(stats, 'lease', parsed.data.op)
    return replica.handleLease(from.toString(), parsed.data)
  }
}
