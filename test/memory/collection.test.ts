import { describe, expect, it } from 'vitest'
import { Collection } from '../../node/memory/collection.js'
import { Rng } from '../../sim/rng.js'

const DIMS = 32

function vectors (n: number, seed: number): number[][] {
  const rng = new Rng(seed)
  return Array.from({ length: n }, () => Array.from({ length: DIMS }, () => rng.next() * 2 - 1))
}

function cosine (a: number[], b: number[]): number {
  let dot = 0; let na = 0; let nb = 0
  for (let i = 0; i < a.length; i++) { dot += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2 }
  return dot / Math.sqrt(na * nb)
}

/** The true top k ids among `live` rows, by a plain scan. */
function truth (q: number[], all: number[][], live: (i: number) => boolean, k: number): string[] {
  return all.map((v, i) => ({ i, s: cosine(q, v) })).filter(x => live(x.i)).sort((a, b) => b.s - a.s).slice(0, k).map(x => `v${x.i}`)
}

const entry = (i: number, metadata?: Record<string, string>): any => ({ collection: 'c', id: `v${i}`, version: 1, writer: 'w', ...(metadata === undefined ? {} : { metadata }) })

describe('a collection on one peer', () => {
  it('exact below the threshold: finds the true top k, through growth, deletes and reused rows', () => {
    const all = vectors(1_500, 1)
    const c = new Collection(DIMS, Number.MAX_SAFE_INTEGER)
    all.forEach((v, i) => { c.set(entry(i), v) })
    const qs = vectors(20, 2)
    for (const q of qs) expect(c.search(Float32Array.from(q), 10).map(m => m.entry.id)).toEqual(truth(q, all, () => true, 10))
    // every third deleted: freed rows (zero vectors) never come back as hits
    for (let i = 0; i < all.length; i += 3) c.delete(`v${i}`)
    expect(c.size).toBe(1_000)
    for (const q of qs) expect(c.search(Float32Array.from(q), 10).map(m => m.entry.id)).toEqual(truth(q, all, i => i % 3 !== 0, 10))
    // an update moves a record: its old vector no longer answers for it
    const moved = vectors(1, 3)[0]!
    c.set(entry(1), moved)
    all[1] = moved
    expect(c.search(Float32Array.from(moved), 1)[0]?.entry.id).toBe('v1')
    expect(c.approximate).toBe(false)
  })

  it('past the threshold an HNSW index answers, kept in step with deletes; a filter scores its matches exactly', () => {
    const all = vectors(1_000, 4)
    const c = new Collection(DIMS, 100)
    all.forEach((v, i) => { c.set(entry(i, { half: i < 500 ? 'a' : 'b' }), v) })
    expect(c.approximate).toBe(true)
    const qs = vectors(30, 5)
    let found = 0
    for (const q of qs) {
      const want = new Set(truth(q, all, () => true, 10))
      found += c.search(Float32Array.from(q), 10).filter(m => want.has(m.entry.id)).length
    }
    expect(found / 300).toBeGreaterThan(0.9)
    c.delete('v7')
    expect(c.search(Float32Array.from(all[7]!), 5).map(m => m.entry.id)).not.toContain('v7')
    const filtered = c.search(Float32Array.from(qs[0]!), 5, { half: 'b' })
    expect(filtered.map(m => m.entry.id)).toEqual(truth(qs[0]!, all, i => i >= 500, 5))
  })
})
