import { Socket } from 'node:net'
import { serviceCapabilities } from '@libp2p/interface'
import type { ConnectionEncrypter, MessageStream } from '@libp2p/interface'

/** Buffers handed to corked sockets by this process (each was its own `write(2)` before). */
export const socketWriteStats = { buffers: 0 }

/**
 * Wraps a connection encrypter (Noise) to make each connection it secures cheaper per message:
 *
 * - The TCP socket under it sends what one turn of the event loop writes in one system call.
 *   Without it every yamux frame is a Noise message, and every Noise message two `write(2)` calls
 *   (its length, then its ciphertext): most of a small request's cost. The socket is corked on the
 *   first write of a turn and uncorked at the end of that whole event-loop iteration
 *   (setImmediate): a write made from a timer waits for the rest of the iteration's I/O, no more.
 *   Backpressure is the socket's own: a corked socket past its high-water mark still says so.
 *   Bytes corked in the turn a connection is reset are dropped with it, as a reset drops any
 *   unsent data. A connection not on a TCP socket (the memory transport, a private network's
 *   wrapper) is left as it is.
 * - Noise's reader learns that a message is not yet whole without an exception (cheapShortReads).
 */
export function tunedEncrypter<C> (encrypter: (components: C) => ConnectionEncrypter): (components: C) => ConnectionEncrypter {
  return (components: C) => {
    const inner = encrypter(components)
    return {
      protocol: inner.protocol,
      [Symbol.toStringTag]: (inner as any)[Symbol.toStringTag],
      [serviceCapabilities]: (inner as any)[serviceCapabilities],
      secureInbound: async (connection, options) => cheapShortReads(await inner.secureInbound(coalesce(connection), options)),
      secureOutbound: async (connection, options) => cheapShortReads(await inner.secureOutbound(coalesce(connection), options))
    } satisfies ConnectionEncrypter & Record<symbol, unknown>
  }
}

/**
 * Noise's reader asks its length decoder for the next message's length after every message it
 * takes, and the stock decoder answers "not yet" by throwing a RangeError: a stack trace built for
 * every chunk read (14% of the CPU of a stream of small requests), and even a prebuilt error's
 * throw and catch cost 5% of a small request's round trip. Instead a short buffer reads as an empty
 * message: its 2 + 0 bytes are more than the buffer holds, so the reader waits for more data, as it
 * does for any message not yet whole. Left alone if Noise's reader is not shaped as expected.
 */
function cheapShortReads<T extends { connection: unknown }> (secured: T): T {
  const decoder = (secured.connection as { decoder?: { lengthDecoder?: unknown } }).decoder
  if (typeof decoder?.lengthDecoder !== 'function') return secured
  decoder.lengthDecoder = noiseFrameLength
  return secured
}

/** A Noise frame's length from its 2-byte prefix; 0 while fewer than 2 bytes are buffered (see cheapShortReads). */
export function noiseFrameLength (data: Uint8Array | { length: number, getUint16: (at: number) => number }): number {
  if (data.length < 2) return 0
  return data instanceof Uint8Array ? (data[0] as number) << 8 | (data[1] as number) : data.getUint16(0)
}

function coalesce (connection: MessageStream): MessageStream {
  const conn = connection as MessageStream & { socket?: unknown, sendData?: (data: unknown) => unknown }
  const socket = conn.socket
  const sendData = conn.sendData
  if (!(socket instanceof Socket) || typeof sendData !== 'function') return connection
  let corked = false
  const uncork = (): void => {
    corked = false
    socket.uncork()
  }
  conn.sendData = (data: unknown) => {
    socketWriteStats.buffers += (data as { bufs?: unknown[] }).bufs?.length ?? 1
    if (!corked && !socket.destroyed) {
      corked = true
      socket.cork()
      setImmediate(uncork)
    }
    return sendData.call(conn, data)
  }
  return connection
}
