import { recordsRequestSchema } from './messages.js'
import type { HandlerStats } from '../lease/handler.js'
import type { Replica } from '../replica/replica.js'

/** The server side of `/agentmesh/records/1.0.0`. */
export function recordsHandler (replica: Replica, stats: HandlerStats) {
  return async (body: unknown): Promise<unknown> => {
    const parsed = recordsRequestSchema.safeParse(body)
    if (!parsed.success) {
      stats.badRequests++
      return { status: 'ERROR', reason: `bad request: ${parsed.error.issues[0]?.message ?? 'invalid'}` }
    }
    const req = parsed.data
    switch (req.op) {
      case 'put': {
        await replica.put(req.record, req.result)
        return { status: 'OK' }
      }
      case 'get': return { status: 'OK', ...await replica.get(req.id) }
      case 'pending': return { status: 'OK', tasks: await replica.claimable(new Set(req.capabilities), req.limit) }
    }
  }
}
