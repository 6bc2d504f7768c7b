import type { Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'

/** The most bytes one coalesced write carries (a larger frame goes alone). */
const MAX_BATCH_BYTES = 64 * 1024

/** frames written and the writes that carried them: the coalescing figure */
export interface WriterStats { framesWritten: number, writes: number }

interface Queued {
  frame: Uint8Array
  /** asked at flush time: a request that timed out while queued is never sent */
  wanted?: () => boolean
}

/**
 * Coalesces the frames one stream sends: frames queued in the same turn of the event loop, or
 * while an earlier write waits for the stream, go out in one write. A lone frame
 * waits only for the end of the current turn, so latency at low load does not grow.
 */
export class FrameWriter {
  private queue: Queued[] = []
  private flushing: Promise<void> | undefined
  constructor (private readonly lp: LengthPrefixedStream<Stream>, private readonly onError: (err: Error) => void, private readonly stats: WriterStats) {}

  write (frame: Uint8Array, wanted?: () => boolean): void {
    this.queue.push({ frame, wanted })
    this.flushing ??= this.flush()
  }

  /** Resolves once every queued frame was written (or the stream failed). */
  async idle (): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
  }

  private async flush (): Promise<void> {
    try {
      await new Promise(resolve => setImmediate(resolve))
      while (this.queue.length > 0) {
        const batch: Queued[] = []
        let bytes = 0
        let taken = 0
        // bounded: the reader buffers what one write carries, and large frames gain nothing
        for (; taken < this.queue.length; taken++) {
          const q = this.queue[taken] as Queued
          if (q.wanted?.() === false) continue
          if (batch.length > 0 && bytes + q.frame.byteLength > MAX_BATCH_BYTES) break
          batch.push(q)
          bytes += q.frame.byteLength
        }
        this.queue = this.queue.slice(taken)
        if (batch.length === 0) continue
        this.stats.framesWritten += batch.length
        this.stats.writes++
        await this.lp.writeV(batch.map(q => q.frame))
      }
    } catch (err: any) {
      this.queue = []
      this.onError(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.flushing = undefined
    }
  }
}
