import { MAX_TIMER_MS } from './options.js'
import type { Logger } from '@libp2p/interface'

/**
 * Runs `work` every `intervalMs`, one round at a time (the next is scheduled when one ends). A
 * failed round is logged and the loop goes on; a programmer error (TypeError) is not swallowed.
 * `stop()` waits for the round under way.
 */
export class Repeater {
  private readonly work: () => Promise<void>
  private readonly intervalMs: () => number
  private readonly log: Logger
  private readonly what: string
  private timer?: ReturnType<typeof setTimeout>
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
    await this.round
  }

  private schedule (): void {
    if (!this.running) return
    // setTimeout fires at once past 2^31 - 1 ms (and warns each time): a longer round waits that long
    this.timer = setTimeout(() => {
      this.round = this.work()
        .catch(err => {
          if (err instanceof TypeError) this.log.error('%s: programming error: %s', this.what, err.stack)
          else if (this.running) this.log.error('%s failed: %s', this.what, err.message)
        })
        .finally(() => { this.schedule() })
    }, Math.min(this.intervalMs(), MAX_TIMER_MS))
  }
}
