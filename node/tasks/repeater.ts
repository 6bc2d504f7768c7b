import { MAX_TIMER_MS } from './options.js'
import type { Logger } from '@libp2p/interface'

/**
 * Runs `work` every `intervalMs()`, read again for each round, one round at a time (the next is
 * scheduled when one ends); `hurry()` brings the next round forward when the interval shrank. A
 * failed round is logged and the loop goes on; a programmer error (TypeError) is not swallowed.
 * `stop()` waits for the round under way.
 */
export class Repeater {
  private readonly work: () => Promise<void>
  private readonly intervalMs: () => number
  private readonly log: Logger
  private readonly what: string
  private timer?: ReturnType<typeof setTimeout>
  /** when the pending timer fires (performance.now(), a monotonic clock); 0 while a round runs */
  private dueAt = 0
  private round: Promise<void> = Promise.resolve()
  private running = false

  constructor (what: string, intervalMs: () => number, work: () => Promise<void>, log: Logger) {
    this.what = what
    this.intervalMs = intervalMs
    this.work = work
    this.log = log
  }

  get isRunning (): boolean {
    return this.running
  }

  start (): void {
    this.running = true
    this.schedule()
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    this.dueAt = 0
    await this.round
  }

  /** Brings the next round forward to `intervalMs()` from now, when it was due later (the interval shrank). */
  hurry (): void {
    // no timer to bring forward: stopped, or a round under way (it schedules the next as it ends)
    if (!this.running || this.dueAt === 0) return
    const ms = this.nextMs()
    if (this.dueAt - performance.now() <= ms) return
    clearTimeout(this.timer)
    this.arm(ms)
  }

  private schedule (): void {
    if (!this.running) return
    this.arm(this.nextMs())
  }

  // setTimeout fires at once past 2^31 - 1 ms (and warns each time): a longer round waits that long
  private nextMs (): number {
    return Math.min(this.intervalMs(), MAX_TIMER_MS)
  }

  private arm (ms: number): void {
    this.dueAt = performance.now() + ms
    this.timer = setTimeout(() => {
      this.dueAt = 0
      this.round = this.work()
        .catch(err => {
          if (err instanceof TypeError) this.log.error('%s: programming error: %s', this.what, err.stack)
          else if (this.running) this.log.error('%s failed: %s', this.what, err.message)
        })
        .finally(() => { this.schedule() })
    }, ms)
  }
}
