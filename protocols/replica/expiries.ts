import type { TaskRecord } from '../task/record.js'

/**
 * When a record's retention starts: a completed or canceled task when it finished, a dead one when
 * its entry was dropped; undefined while it is unfinished, or dead and still in the dead letters.
 */
export function endedAt (record: TaskRecord): number | undefined {
  const f = record.final
  if (f === undefined) return undefined
  if (f.state !== 'dead') return f.at
  return (record.droppedGeneration ?? -1) >= record.generation ? record.updatedAt : undefined
}

/**
 * Finished records by when their retention started, oldest first, so that retention reads only
 * the records it may delete: it read every record the store held once a minute (7 µs each: a
 * million records took 7 s of every minute). A record is queued each time it is indexed ended;
 * the caller checks the stored record before deleting, so an entry left behind by a later write
 * (a redrive, a rewrite) costs one read. Times are queued about in order; one queued out of order
 * waits for the entries before it, by no more than that disorder.
 */
export class ExpiryQueue {
  private times: number[] = []
  private ids: string[] = []
  private head = 0

  get size (): number {
    return this.ids.length - this.head
  }

  push (id: string, at: number): void {
    this.times.push(at)
    this.ids.push(id)
  }

  /** Puts the queue in time order: after loading a store, whose records come in id order. */
  sort (): void {
    const order = this.ids.slice(this.head).map((id, i) => ({ id, at: this.times[this.head + i] as number }))
    order.sort((a, b) => a.at - b.at)
    this.ids = order.map(e => e.id)
    this.times = order.map(e => e.at)
    this.head = 0
  }

  /** Takes out the ids whose retention started at or before `cutoff`. */
  takeDue (cutoff: number): string[] {
    const due: string[] = []
    while (this.head < this.ids.length && (this.times[this.head] as number) <= cutoff) due.push(this.ids[this.head++] as string)
    // the spent front is cut off once it is most of the arrays
    if (this.head > 1024 && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head)
      this.times = this.times.slice(this.head)
      this.head = 0
    }
    return due
  }
}
