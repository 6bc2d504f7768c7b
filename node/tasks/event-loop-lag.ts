import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { IntervalHistogram } from 'node:perf_hooks'

/**
 * How late this process's event loop runs: the worst delay over the last second or two. One
 * monitor per process, shared by every node in it, since the lag belongs to the process.
 */
class EventLoopLag {
  private histogram?: IntervalHistogram
  private users = 0
  private previousMaxMs = 0
  private rotatedAt = 0
  private sampling = 0

  /** The sampling interval in use, in ms; 0 when not measuring. */
  get sampleMs (): number {
    return this.histogram === undefined ? 0 : this.sampling
  }

  /** Starts measuring (on the first user), a sample every `sampleMs`. */
  acquire (sampleMs: number): void {
    if (this.users++ > 0) return
    this.sampling = sampleMs
    this.histogram = monitorEventLoopDelay({ resolution: sampleMs })
    this.histogram.enable()
    this.rotatedAt = Date.now()
    this.previousMaxMs = 0
  }

  /** Stops measuring once the last user is gone. */
  release (): void {
    if (this.users === 0 || --this.users > 0) return
    this.histogram?.disable()
    this.histogram = undefined
  }

  /** The worst lag in ms of the current and the previous second; 0 when not measuring. */
  currentMs (): number {
    const h = this.histogram
    if (h === undefined) return 0
    const now = Date.now()
    if (now - this.rotatedAt >= 1_000) {
      this.previousMaxMs = h.max / 1e6
      h.reset()
      this.rotatedAt = now
    }
    return Math.max(this.previousMaxMs, h.max / 1e6)
  }
}

export const eventLoopLag = new EventLoopLag()
