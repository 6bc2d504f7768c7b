import { endsAtStop } from './graceful-close.js'
import type { FastifyReply } from 'fastify'
import type { ServerResponse } from 'node:http'

/** A client that reads slower than this many bytes behind is cut off: a stalled reader must not grow the node's memory. */
export const DEFAULT_SSE_MAX_BUFFERED_BYTES = 1024 * 1024

export interface SseStream {
  /** writes raw event-stream text; nothing once closed */
  write: (text: string) => void
  isClosed: () => boolean
  /** called once when the client leaves, the stream is cut off or ended */
  onClose: (fn: () => void) => void
  end: () => void
}

const clientEnded = new WeakSet<ServerResponse>()

/** Whether `res` is an event stream: its client ends it (no client gone, no error). */
export function endedByClient (res: ServerResponse): boolean {
  return clientEnded.has(res)
}

/**
 * Opens a server-sent event stream on the raw response (Fastify is told to leave it alone). A
 * client that left before it opened counts as closed at once, and one that stops reading is cut off
 * past `maxBufferedBytes` instead of buffering without limit.
 */
export function openStream (reply: FastifyReply, maxBufferedBytes = DEFAULT_SSE_MAX_BUFFERED_BYTES): SseStream {
  reply.hijack()
  const res = reply.raw
  clientEnded.add(res)
  // a stop ends it cleanly at once: a client resumes it on another node
  endsAtStop(res)
  const closers: Array<() => void> = []
  let closed = false
  const close = (): void => {
    if (closed) return
    closed = true
    for (const fn of closers.splice(0)) fn()
  }
  // the response's 'close' comes when the connection goes or the stream ends, whichever is first
  res.once('close', close)
  if (res.destroyed || res.socket === null || res.socket.destroyed) close()
  else {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' })
    res.flushHeaders()
  }
  return {
    write: text => {
      if (closed) return
      if (res.writableLength > maxBufferedBytes) {
        res.destroy()
        close()
        return
      }
      res.write(text)
    },
    isClosed: () => closed,
    onClose: fn => { if (closed) fn(); else closers.push(fn) },
    end: () => {
      if (!res.writableEnded && !res.destroyed) res.end()
      close()
    }
  }
}
