import type { TaskLayerOptions } from './options.js'
import type { Pulled } from './pull.js'

/**
 * When a node pulls next (see pullTasks): every pullIntervalMs while tasks move, the wait doubled
 * by each pull that finds nothing, up to pullIntervalCapMs; within pullAgainMs of a freed slot of a
 * capability the last pull left claimable tasks of behind; and when a task the last pull left out
 * as too young comes of age.
 */
export class PullPace {
  /** the wait to the next pull: pullIntervalMs while tasks move, doubled by each pull that found none */
  private waitMs: number
  /** capabilities of which the last pull that asked for them left claimable tasks behind */
  private readonly moreToPull = new Set<string>()
  /** a slot of such a capability freed: the next pull is within pullAgainMs */
  private again = false
  /** in how many ms, from the last pull, the first task it left out as too young comes of age */
  private youngDueMs: number | undefined

  constructor (private readonly o: Pick<TaskLayerOptions, 'pullIntervalMs' | 'pullIntervalCapMs' | 'pullAgainMs'>) {
    this.waitMs = o.pullIntervalMs
  }

  /** The wait to the next pull. A lagging node waits its interval: it defers its claims anyway. */
  nextMs (lagging: boolean): number {
    if (this.again) return this.o.pullAgainMs
    // a task left out as too young is pulled once it comes of age, not a (backed-off) interval later:
    // a dead submitter's tasks waited for a pull 4 s off, every slot of the node free
    return this.youngDueMs === undefined || lagging ? this.waitMs : Math.min(this.waitMs, Math.max(this.o.pullAgainMs, this.youngDueMs))
  }

  /** Tasks are moving: pulls go back to every pullIntervalMs. Whether the wait shrank (hurry the loop). */
  moving (): boolean {
    if (this.waitMs === this.o.pullIntervalMs) return false
    this.waitMs = this.o.pullIntervalMs
    return true
  }

  /** A slot of `capability` freed: whether the next pull is to be soon (hurry the loop). */
  slotFreed (capability: string): boolean {
    if (!this.moreToPull.has(capability)) return false
    // during a round the loop's hurry does nothing; the flag makes the round's next one soon
    this.again = true
    return true
  }

  /** A pull begins: whether a freed slot brought it forward. */
  begin (): boolean {
    const again = this.again
    this.again = false
    return again
  }

  /**
   * A pull ended with what it found (undefined: skipped for want of a free slot). `quiet`: it asked
   * and found nothing, and nothing moved meanwhile.
   */
  ended (pulled: Pulled | undefined, quiet: boolean): void {
    // a capability it did not ask for (no free slot) keeps what the last pull that asked found
    for (const cap of pulled?.asked ?? []) {
      if (pulled?.leftBehind.has(cap) === true) this.moreToPull.add(cap)
      else this.moreToPull.delete(cap)
    }
    if (this.moreToPull.size === 0) this.again = false
    this.youngDueMs = pulled?.youngDueInMs
    this.waitMs = quiet ? Math.min(this.waitMs * 2, Math.max(this.o.pullIntervalMs, this.o.pullIntervalCapMs)) : this.o.pullIntervalMs
  }

  /** A claimer (re)started: nothing is known to be left behind. */
  reset (): void {
    this.moreToPull.clear()
    this.again = false
    this.youngDueMs = undefined
  }
}
