import { describe, expect, it } from 'vitest'
import { ExpiryQueue } from '../../protocols/replica/expiries.js'

describe('expiry queue', () => {
  it('gives back what is due, earliest first, whatever order it was queued in', () => {
    let seed = 11
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    const q = new ExpiryQueue()
    const all: Array<{ id: string, at: number }> = []
    for (let i = 0; i < 2_000; i++) {
      const e = { id: `t${i}`, at: rand(10_000) }
      all.push(e)
      q.push(e.id, e.at)
    }
    // a copy stamped far in the future by another member's clock waits for its own time only
    q.push('future', 1e16)
    const byTime = [...all].sort((a, b) => a.at - b.at)
    const first = q.takeDue(4_999)
    expect(first.map(e => e.at)).toEqual(byTime.filter(e => e.at <= 4_999).map(e => e.at))
    expect(new Set(first.map(e => e.id))).toEqual(new Set(all.filter(e => e.at <= 4_999).map(e => e.id)))
    // entries queued later, earlier than what is left, come out first
    q.push('late', 1)
    const rest = q.takeDue(20_000)
    expect(rest[0]).toEqual({ id: 'late', at: 1 })
    expect(rest.slice(1).map(e => e.at)).toEqual(byTime.filter(e => e.at > 4_999).map(e => e.at))
    expect(q.size).toBe(1)
    expect(q.takeDue(1e16)).toEqual([{ id: 'future', at: 1e16 }])
    expect(q.takeDue(Number.MAX_VALUE)).toEqual([])
  })
})
