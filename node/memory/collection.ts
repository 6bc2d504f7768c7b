import usearch from 'usearch'
import type { MemoryEntry } from '../../protocols/memory/index.js'

const { Index, MetricKind, ScalarKind, exactSearch } = usearch
type HnswIndex = InstanceType<typeof Index>

/** The HNSW index a large collection switches to (the bench measures its recall with this very function). */
export function newHnswIndex (dimensions: number): HnswIndex {
  // measured on random 384-dim vectors (30,000): M=16/ef 128 finds 35% of the true top 10, M=32 with
  // ef_add 256 and ef_search 1,024 finds 99.4% at ~9 ms a query
  return new Index({ metric: MetricKind.Cos, connectivity: 32, dimensions, quantization: ScalarKind.F32, expansion_add: 256, expansion_search: 1_024, multi: false })
}

export interface Match { entry: MemoryEntry, score: number }

interface Row { entry: MemoryEntry, row: number, label?: bigint }

/**
 * One collection's records on this replica, their vectors in one contiguous matrix. Up to
 * `hnswAbove` records a search is exact (usearch's SIMD scan: 8 ms for 100,000 vectors of 384 dims
 * here, every true neighbour found, where HNSW found 88% in 48 ms); past it an HNSW index is built
 * and kept in step, since the scan grows linearly.
 */
export class Collection {
  private matrix: Float32Array
  private rowIds: Array<string | undefined> = []
  private readonly free: number[] = []
  private readonly rows = new Map<string, Row>()
  private hnsw?: HnswIndex
  private readonly byLabel = new Map<bigint, string>()
  private nextLabel = 1n

  constructor (readonly dimensions: number, private readonly hnswAbove: number) {
    this.matrix = new Float32Array(dimensions * 4)
  }

  get size (): number {
    return this.rows.size
  }

  get approximate (): boolean {
    return this.hnsw !== undefined
  }

  set (entry: MemoryEntry, vector: number[]): void {
    this.delete(entry.id)
    const row = this.free.pop() ?? this.rowIds.length
    if ((row + 1) * this.dimensions > this.matrix.length) {
      const grown = new Float32Array(this.matrix.length * 2)
      grown.set(this.matrix)
      this.matrix = grown
    }
    this.matrix.set(vector, row * this.dimensions)
    this.rowIds[row] = entry.id
    const r: Row = { entry, row }
    this.rows.set(entry.id, r)
    if (this.hnsw !== undefined) this.addToHnsw(r)
    else if (this.rows.size > this.hnswAbove) this.buildHnsw()
  }

  has (id: string): boolean {
    return this.rows.has(id)
  }

  delete (id: string): void {
    const r = this.rows.get(id)
    if (r === undefined) return
    this.rows.delete(id)
    this.rowIds[r.row] = undefined
    this.matrix.fill(0, r.row * this.dimensions, (r.row + 1) * this.dimensions)
    this.free.push(r.row)
    if (r.label !== undefined) {
      this.hnsw?.remove(r.label)
      this.byLabel.delete(r.label)
    }
  }

  /** The `k` nearest matching `filter` (every key equal), by cosine similarity, best first. */
  search (q: Float32Array, k: number, filter?: Record<string, unknown>): Match[] {
    const matches = (e: MemoryEntry): boolean => filter === undefined || Object.entries(filter).every(([key, v]) => e.metadata?.[key] === v)
    if (filter !== undefined) {
      // a filter first narrows the rows; the survivors are scored exactly
      const scored = [...this.rows.values()].filter(r => matches(r.entry)).map(r => ({ entry: r.entry, score: cosine(q, this.vector(r.row)) }))
      return scored.sort((a, b) => b.score - a.score).slice(0, k)
    }
    const out: Match[] = []
    if (this.hnsw !== undefined) {
      const found = this.hnsw.search(q, Math.min(k, this.rows.size), 0)
      for (let i = 0; i < found.keys.length; i++) {
        const id = this.byLabel.get(found.keys[i] as bigint)
        const r = id === undefined ? undefined : this.rows.get(id)
        if (r !== undefined) out.push({ entry: r.entry, score: 1 - (found.distances[i] as number) })
      }
      return out
    }
    const used = this.rowIds.length
    // freed rows are zero vectors: asking for as many more keeps them from crowding out real ones
    const found = exactSearch(this.matrix.subarray(0, used * this.dimensions), q, this.dimensions, Math.min(used, k + this.free.length), MetricKind.Cos) as { keys: BigUint64Array, distances: Float32Array }
    for (let i = 0; i < found.keys.length && out.length < k; i++) {
      const id = this.rowIds[Number(found.keys[i])]
      const r = id === undefined ? undefined : this.rows.get(id)
      if (r !== undefined) out.push({ entry: r.entry, score: 1 - (found.distances[i] as number) })
    }
    return out
  }

  private vector (row: number): Float32Array {
    return this.matrix.subarray(row * this.dimensions, (row + 1) * this.dimensions)
  }

  private buildHnsw (): void {
    this.hnsw = newHnswIndex(this.dimensions)
    for (const r of this.rows.values()) this.addToHnsw(r)
  }

  private addToHnsw (r: Row): void {
    const label = this.nextLabel++
    this.hnsw?.add(label, this.vector(r.row))
    this.byLabel.set(label, r.entry.id)
    r.label = label
  }
}

function cosine (a: Float32Array, b: Float32Array): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number)
    na += (a[i] as number) ** 2
    nb += (b[i] as number) ** 2
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}
