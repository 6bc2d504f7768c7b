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
 * order); once its body is read (a body left unread stops the socket, and Node then times the
 * request out), it waits for the answers before it (`waitOf`).
 */
export class ConnectionTurns {
  /** each connection's last request */
  private readonly last = new WeakMap<Socket, Turn>()
  /** the requests that must wait: resolves false when the request is dropped */
  private readonly waits = new WeakMap<IncomingMessage, Promise<boolean>>()
  private readonly dropped = new WeakSet<IncomingMessage>()

  constructor (private readonly onDrop: () => void) {}

  enter (req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket
    const before = this.last.get(socket)
    const turn: Turn = { over: false, closes: false, waiters: undefined }
    res.once('close', () => { end(turn, closesConnection(req)) })
    this.last.set(socket, turn)
    // the usual case, no pipelining: the answer before this request is long done, nothing waits
    if (before === undefined || (before.over && !before.closes && !socket.destroyed)) return
    this.waits.set(req, new Promise<boolean>(resolve => {
      const decide = (closes: boolean): void => {
        if (!closes && !socket.destroyed) return resolve(true)
        // a dropped request is never answered: the ones behind it go too
        this.dropped.add(req)
        end(turn, true)
        this.onDrop()
        resolve(false)
      }
      if (before.over) decide(before.closes)
      else (before.waiters ??= []).push(decide)
    }))
  }

  /** What this request waits for before it may run (undefined: nothing); it resolves false when the request must be dropped unanswered. */
  waitOf (req: IncomingMessage): Promise<boolean> | undefined {
    return this.waits.get(req)
  }

  /** A request dropped here (its connection then goes away, which is no client leaving). */
  wasDropped (req: IncomingMessage): boolean {
    return this.dropped.has(req)
  }
}

/** One request's place in its connection's line. */
interface Turn {
  /** its answer is done (or it was dropped) */
  over: boolean
  /** and that closed the connection */
  closes: boolean
  /** the next request's decision, while this one is not over */
  waiters: Array<(closes: boolean) => void> | undefined
}

function end (turn: Turn, closes: boolean): void {
  if (turn.over) return
  turn.over = true
  turn.closes = closes
  for (const decide of turn.waiters ?? []) decide(closes)
  turn.waiters = undefined
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
