/**
 * The most recently used entries up to a count and (optionally) a byte budget, about: a read marks
 * its entry used, and eviction, from the oldest insertion on, gives a used entry a second chance
 * (moved to the back, unmarked) and drops the first unused one (the CLOCK algorithm on a Map, which
 * keeps insertion order). A read used to move its entry to the back itself, a delete and an insert
 * in the Map; a few peer ids read on every request made that about 1.5% of a loaded node's CPU.
 */
export class RecentCache<V> {
  private readonly entries = new Map<string, { value: V, bytes: number, used: boolean }>()
  private bytes = 0

  constructor (private readonly maxEntries: number, private readonly maxBytes = Number.POSITIVE_INFINITY) {}

  get (key: string): V | undefined {
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    e.used = true
    return e.value
  }

  set (key: string, value: V, bytes = 0): void {
    this.delete(key)
    // an entry larger than the whole budget is not worth evicting everything for
    if (bytes > this.maxBytes || this.maxEntries < 1) return
    this.entries.set(key, { value, bytes, used: false })
    this.bytes += bytes
    this.evict(key)
  }

  delete (key: string): void {
    const e = this.entries.get(key)
    if (e === undefined) return
    this.entries.delete(key)
    this.bytes -= e.bytes
  }

  get size (): number {
    return this.entries.size
  }

  /** Drops entries, oldest unused first, until within both bounds; `kept` (the one just set) goes last. */
  private evict (kept: string): void {
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [k, e] = this.entries.entries().next().value as [string, { value: V, bytes: number, used: boolean }]
      this.entries.delete(k)
      if (e.used || k === kept) {
        // a second chance: after one round every entry is unmarked, and the loop ends (set refused
        // an entry over the bounds on its own, so one other than `kept` is there to drop)
        e.used = false
        this.entries.set(k, e)
      } else this.bytes -= e.bytes
    }
  }
}
