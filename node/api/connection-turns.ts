import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Requests on one connection, one after another. Node's server starts every pipelined request at
 * once and only orders their answers, so a submit pipelined behind one refused with `connection:
 * close` (a body refused unread, bad JSON) was run and its task stored, and its answer never sent:
 * a client that retried made a second task. RFC 9112 §9.6: a server that sends `close` processes no
 * further request on that connection. A connection without pipelining waits for nothing.
 *
 * `enter` takes a request's place in its connection's line as it arrives (requests arrive in
 * order); `mayRun` waits, once its body is read (a body left unread stops the socket, and Node then
 * times the request out), for the answers before it.
 */
export class ConnectionTurns {
  /** each connection's last request: resolves once its answer is done, true when that closed the connection */
  private readonly last = new WeakMap<Socket, Promise<boolean>>()
  /** each request's wait for its turn: false when it is dropped */
  private readonly waits = new WeakMap<IncomingMessage, Promise<boolean>>()
  private readonly dropped = new WeakSet<IncomingMessage>()

  constructor (private readonly onDrop: () => void) {}

  enter (req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket
    const before = this.last.get(socket)
    let settle!: (closed: boolean) => void
    const done = new Promise<boolean>(resolve => { settle = resolve })
    res.once('close', () => { settle(closesConnection(req)) })
    this.last.set(socket, done)
    if (before === undefined) return
    this.waits.set(req, before.then(closed => {
      if (!closed && !socket.destroyed) return true
      // a dropped request is never answered: the ones behind it go too
      this.dropped.add(req)
      settle(true)
      this.onDrop()
      return false
    }))
  }

  /** Waits for the answers before this request's; false when one of them closed the connection: drop it unanswered. */
  async mayRun (req: IncomingMessage): Promise<boolean> {
    return await (this.waits.get(req) ?? true)
  }

  /** A request dropped here (its connection then goes away, which is no client leaving). */
  wasDropped (req: IncomingMessage): boolean {
    return this.dropped.has(req)
  }
}

/**
 * Whether an answer ended its connection. Its headers cannot tell (Fastify and the doors' SDKs pass
 * them to writeHead, where getHeader does not see them), but Node ends the socket as the answer
 * finishes, before the answer's 'close'.
 */
function closesConnection (req: IncomingMessage): boolean {
  return req.socket.destroyed || !req.socket.writable
}

/**
 * A client that sent `Connection: close` expects the connection closed after the answer, and
 * reads to its end. An answer sent with `connection: keep-alive` (a stream's, set by a door's SDK)
 * overrode that, and the socket stayed open for the keep-alive timeout.
 */
export function closeWhenAsked (req: IncomingMessage, res: ServerResponse): void {
  if (!/\bclose\b/i.test(String(req.headers.connection ?? ''))) return
  res.once('finish', () => { req.socket.destroySoon() })
}
