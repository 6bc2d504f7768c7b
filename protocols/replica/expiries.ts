import { isDeadLetter } from '../task/record.js'
import type { TaskRecord } from '../task/record.js'

/**
 * When a record's retention starts: a completed or canceled task when it finished, a dead one when
 * its entry was dropped; undefined while it is unfinished, or dead and still in the dead letters.
 */
export function endedAt (record: TaskRecord): number | undefined {
  const f = record.final
  if (f === undefined) return undefined
  if (f.state !== 'dead') return f.at
  return isDeadLetter(record) ? undefined : record.updatedAt
}

export interface Expiry { id: string, at: number }

/**
 * Finished records by when their retention started, earliest first (a binary heap), so that
 * retention reads only the records it may delete: it read every record the store held once a
 * minute (7 µs each: a million records took 7 s of every minute). A record is queued when it is
 * indexed with another retention start than before; the caller checks the stored record before
 * deleting, so an entry a later write made stale (a redrive) costs one read. Times come from the
 * records, stamped by whichever member's clock: one far in the future only waits for its time.
 */
export class ExpiryQueue {
  private readonly times: number[] = []
  private readonly ids: string[] = []

  get size (): number {
    return this.ids.length
  }

  push (id: string, at: number): void {
    let i = this.ids.length
    this.times.push(at)
    this.ids.push(id)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((this.times[parent] as number) <= at) break
      this.move(parent, i)
      i = parent
    }
    this.times[i] = at
    this.ids[i] = id
  }

  /** Takes out the entries whose retention started at or before `cutoff`, earliest first. */
  takeDue (cutoff: number): Expiry[] {
    const due: Expiry[] = []
    while (this.ids.length > 0 && (this.times[0] as number) <= cutoff) due.push(this.pop())
    return due
  }

  private pop (): Expiry {
    const top = { id: this.ids[0] as string, at: this.times[0] as number }
    const lastAt = this.times.pop() as number
    const lastId = this.ids.pop() as string
    const n = this.ids.length
    if (n === 0) return top
    let i = 0
    while (true) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && (this.times[right] as number) < (this.times[left] as number) ? right : left
      if ((this.times[child] as number) >= lastAt) break
      this.move(child, i)
      i = child
    }
    this.times[i] = lastAt
    this.ids[i] = lastId
    return top
  }

  private move (from: number, to: number): void {
    this.times[to] = this.times[from] as number
    this.ids[to] = this.ids[from] as string
  }
}
