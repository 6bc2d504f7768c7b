/**
 * The most recently used entries up to a count and (optionally) a byte budget, oldest evicted
 * first. A Map keeps insertion order, so re-inserting on use makes it an LRU without a list of its own.
 */
export class RecentCache<V> {
  private readonly entries = new Map<string, { value: V, bytes: number }>()
  private bytes = 0

  constructor (private readonly maxEntries: number, private readonly maxBytes = Number.POSITIVE_INFINITY) {}

  get (key: string): V | undefined {
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    this.entries.delete(key)
    this.entries.set(key, e)
    return e.value
  }

  set (key: string, value: V, bytes = 0): void {
    this.delete(key)
    // an entry larger than the whole budget is not worth evicting everything for
    if (bytes > this.maxBytes || this.maxEntries === 0) return
    this.entries.set(key, { value, bytes })
    this.bytes += bytes
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break
      this.entries.delete(k)
      this.bytes -= e.bytes
    }
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
}
