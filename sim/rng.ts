/** A seeded PRNG (mulberry32): the same seed gives the same workload and fault schedule. */
export class Rng {
  private state: number

  constructor (seed: number) {
    this.state = seed >>> 0
  }

  /** in [0, 1) */
  next (): number {
    this.state = (this.state + 0x6D2B79F5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  int (min: number, maxExclusive: number): number {
    return min + Math.floor(this.next() * (maxExclusive - min))
  }

  pick<T> (items: readonly T[]): T {
    return items[this.int(0, items.length)] as T
  }
}
