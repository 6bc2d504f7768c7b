import type { FastifyInstance } from 'fastify'
import type { Server, ServerResponse } from 'node:http'

/** @default 3_000: inside the daemon's stop (stopTimeoutMs, 5 s by default), with the node's own stop after it */
export const DEFAULT_CLOSE_GRACE_MS = 3_000

/** Event streams a client resumes on another node (Last-Event-ID): ended at once by a stop. */
const resumable = new WeakSet<ServerResponse>()

/** Marks `res` as an event stream a stop ends at once, cleanly, rather than waiting for it. */
export function endsAtStop (res: ServerResponse): void {
  resumable.add(res)
}

/**
 * The API's stop, which answers what it took. A submit cut off mid-way had its tasks stored and
 * run while its client heard nothing, and a retry without an idempotency key made them twice. So
 * once the stop begins:
 *
 * - a new request gets 503 NODE_STOPPING with Retry-After (the server's `onRequest` check reads
 *   `stopping`);
 * - long polls answer at once with the state they have (their `gone` signal follows `stopping`);
 * - event streams (endsAtStop) end at once, cleanly: a client resumes them elsewhere;
 * - every other request is answered, a door's stream (a completion's tokens) runs to its end, and
 *   each connection closes behind its answer, for up to `graceMs`; then whatever is left is cut.
 */
export class GracefulClose {
  private readonly controller = new AbortController()
  private readonly open = new Set<ServerResponse>()
  private server?: Server

  /** @param graceMs how long the answers under way get before what is left is cut */
  constructor (private readonly graceMs: number) {}

  get stopping (): AbortSignal {
    return this.controller.signal
  }

  track (res: ServerResponse): void {
    this.open.add(res)
    res.once('close', () => {
      this.open.delete(res)
      // an answer that was sent keep-alive (its headers before the stop) leaves its connection idle
      // now: closed at once, or the stop would wait for it until the cut
      if (this.server !== undefined) {
        const server = this.server
        setImmediate(() => { server.closeIdleConnections() })
      }
    })
  }

  async close (app: FastifyInstance): Promise<void> {
    this.server = app.server
    this.controller.abort()
    for (const res of this.open) {
      if (resumable.has(res)) res.end()
      else if (!res.headersSent) res.setHeader('connection', 'close')
    }
    const cut = setTimeout(() => { app.server.closeAllConnections() }, this.graceMs)
    cut.unref()
    try {
      await app.close()
    } finally {
      clearTimeout(cut)
    }
  }
}
