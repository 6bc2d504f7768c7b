import type { Stream, StreamMuxer, StreamMuxerFactory } from '@libp2p/interface'

/** yamux's StreamState.Established: the only state in which a window update carries no flag */
const ESTABLISHED = 3

interface YamuxStreamShape {
  sendWindowUpdate: () => void
  state: unknown
  recvWindow: number
  recvWindowCapacity: number
}

/**
 * js-yamux answers every data frame with a window update, so a request and its answer are four
 * frames, each its own Noise message, where two carry data. Go's and Rust's yamux send an update
 * once half the receive window is used; this makes one stream do the same. The sender still
 * never waits: it has at least half a window left whenever no update is owed. Streams opened,
 * acknowledged, paused or closing keep yamux's own behaviour, and a stream not shaped like
 * yamux's is left alone.
 */
export function windowUpdatesAtHalf (stream: Stream): void {
  const s = stream as unknown as Partial<YamuxStreamShape>
  const update = s.sendWindowUpdate
  if (typeof update !== 'function' || typeof s.recvWindow !== 'number' || typeof s.recvWindowCapacity !== 'number') return
  s.sendWindowUpdate = function (this: YamuxStreamShape) {
    if (this.state === ESTABLISHED && this.recvWindowCapacity * 2 > this.recvWindow) return
    update.call(this)
  }
}

/**
 * Wraps a yamux factory so that every stream of every connection (ours, gossipsub's, the DHT's)
 * sends window updates at half its window: gossipsub's streams, long-lived and carrying one small
 * message per frame, answered each with an update, half of what an idle node in a mesh of 10 wrote.
 * A muxer that does not make its streams in `_newStream` (not yamux's) is left as it is.
 */
export function windowUpdatesAtHalfOnEveryStream<C> (muxer: (components: C) => StreamMuxerFactory): (components: C) => StreamMuxerFactory {
  return (components: C) => {
    const factory = muxer(components)
    const create = factory.createStreamMuxer.bind(factory)
    factory.createStreamMuxer = (maConn): StreamMuxer => {
      const m = create(maConn) as StreamMuxer & { _newStream?: (...args: unknown[]) => Stream }
      const newStream = m._newStream
      if (typeof newStream === 'function') {
        m._newStream = function (this: unknown, ...args: unknown[]): Stream {
          const stream = newStream.apply(this, args)
          windowUpdatesAtHalf(stream)
          return stream
        }
      }
      return m
    }
    return factory
  }
}
