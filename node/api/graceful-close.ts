import type { FastifyInstance } from 'fastify'
import type { ServerResponse } from 'node:http'

/** @default 3_000: inside the daemon's 5 s stop, with the node's own stop after it */
export const DEFAULT_CLOSE_GRACE_MS = 3_000

/**
 * The API's stop, which answers what it took. A submit cut off mid-way had its tasks stored and
 * run while its client heard nothing, and a retry without an idempotency key made them twice. So
 * once the stop begins:
 *
 * - a new request gets 503 NODE_STOPPING with Retry-After (the server's `onRequest` check reads
 *   `stopping`);
 * - long polls answer at once with the state they have (their `gone` signal follows `stopping`);
 * - streams under way (headers sent, not ended: server-sent events) end, as a client reconnects
 *   them elsewhere;
 * - every other request is answered, each connection closing behind its answer, for up to
 *   `graceMs`; then whatever is left is cut.
 */
export class GracefulClose {
  private readonly controller = new AbortController()
  private readonly open = new Set<ServerResponse>()

  get stopping (): AbortSignal {
    return this.controller.signal
  }

  track (res: ServerResponse): void {
    this.open.add(res)
    res.once('close', () => { this.open.delete(res) })
  }

  async close (app: FastifyInstance, graceMs: number): Promise<void> {
    this.controller.abort()
    for (const res of this.open) {
      if (!res.headersSent) res.setHeader('connection', 'close')
      else if (!res.writableEnded) res.destroy()
    }
    const cut = setTimeout(() => { app.server.closeAllConnections() }, graceMs)
    cut.unref()
    try {
      await app.close()
    } finally {
      clearTimeout(cut)
    }
  }
}
