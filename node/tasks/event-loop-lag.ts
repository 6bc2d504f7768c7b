import { performance } from 'node:perf_hooks'
import type { LastStall } from '../../protocols/presence/index.js'

/** Lag is reported as the worst of the current and the previous window of this length. */
const WINDOW_MS = 1_000

/**
 * How late this process's event loop runs: the worst delay over the last second or two. One
 * monitor per process, shared by every node in it, since the lag belongs to the process.
 *
 * A timer due every `sampleMs` notes how late it ran. Node's own histogram
 * (monitorEventLoopDelay) was not used: it reports the time between samples, so an idle loop read
 * as one interval of lag, and a reset drops the next sample, so a window with few samples read
 * as no lag at all. A sample overdue when the lag is asked for counts too: the loop was blocked
 * until that moment, whether or not the timer has run since.
 */
class EventLoopLag {
  private timer?: ReturnType<typeof setInterval>
  private users = 0
  private sampling = 0
  /** when the next sample is due, on the performance clock */
  private due = 0
  private windowMaxMs = 0
  private previousMaxMs = 0
  private rotatedAt = 0
  /** the latest sample later than a whole sampling interval: when it ran, and how late */
  private stall?: { endedAt: number, lengthMs: number }

  /** The sampling interval in use, in ms; 0 when not measuring. */
  get sampleMs (): number {
    return this.timer === undefined ? 0 : this.sampling
  }

  /** Starts measuring (on the first user), a sample every `sampleMs`. */
  acquire (sampleMs: number): void {
    if (this.users++ > 0) return
    this.sampling = sampleMs
    const now = performance.now()
    this.due = now + sampleMs
    this.rotatedAt = now
    this.windowMaxMs = 0
    this.previousMaxMs = 0
    this.timer = setInterval(() => { this.sample() }, sampleMs)
    // the monitor alone must not keep a process alive
    this.timer.unref()
  }

  /** Stops measuring once the last user is gone. */
  release (): void {
    if (this.users === 0 || --this.users > 0) return
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** The worst lag in ms of the current and the previous second; 0 when not measuring. */
  currentMs (): number {
    if (this.timer === undefined) return 0
    const now = performance.now()
    this.rotate(now)
    return Math.max(this.previousMaxMs, this.windowMaxMs, now - this.due)
  }

  /**
   * This process's latest stall: how long it lasted and how long ago it ended (0: it lasts still),
   * in ms; undefined when none was seen while measuring. A stall is a sample later than a whole
   * interval (shorter lateness is a busy loop's jitter, during which it still reads its sockets),
   * or one overdue by that much now, before its timer could run. Timers run before the loop reads
   * its sockets, so right after a stall the messages that came during it are still unread: whoever
   * judges a peer by its silence does not count that stall against it (PresenceInit.lastStall).
   * Only the latest: what came during an earlier one was read once it ended.
   */
  lastStall (): LastStall | undefined {
    if (this.timer === undefined) return undefined
    const now = performance.now()
    const overdue = now - this.due
    if (overdue > this.sampling) return { lengthMs: overdue, endedAgoMs: 0 }
    return this.stall === undefined ? undefined : { lengthMs: this.stall.lengthMs, endedAgoMs: now - this.stall.endedAt }
  }

  private sample (): void {
    const now = performance.now()
    this.rotate(now)
    const late = now - this.due
    this.windowMaxMs = Math.max(this.windowMaxMs, late)
    if (late > this.sampling) this.stall = { endedAt: now, lengthMs: late }
    // setInterval counts the next interval from this run, not from when this one was due
    this.due = now + this.sampling
  }

  private rotate (now: number): void {
    if (now - this.rotatedAt < WINDOW_MS) return
    // a whole window without a sample: the previous one has nothing to say
    this.previousMaxMs = now - this.rotatedAt < 2 * WINDOW_MS ? this.windowMaxMs : 0
    this.windowMaxMs = 0
    this.rotatedAt = now
  }
}

export const eventLoopLag = new EventLoopLag()
