import usearch from 'usearch'
import { newer } from '../../protocols/memory/index.js'
import type { MemoryEntry, MemoryHit } from '../../protocols/memory/index.js'
import type { Namespace } from '../store/namespace.js'
import type { Store } from '../store/store.js'

const { Index, MetricKind, ScalarKind } = usearch

interface Live { entry: MemoryEntry, label: bigint, vector: Float32Array }

/** One collection's records on this replica: an HNSW index (usearch, cosine) beside the records. */
/** The vector index of one collection (the bench measures its recall with this very function). */
export function newVectorIndex (dimensions: number): InstanceType<typeof Index> {
  // usearch's defaults for graph degree and build effort; a wider search beam for recall@10
  return new Index({ metric: MetricKind.Cos, connectivity: 16, dimensions, quantization: ScalarKind.F32, expansion_add: 128, expansion_search: 128, multi: false })
}

class Collection {
  readonly index: InstanceType<typeof Index>
  readonly live = new Map<string, Live>()
  readonly byLabel = new Map<bigint, string>()
  constructor (readonly dimensions: number) {
    this.index = newVectorIndex(dimensions)
  }
}

export interface LocalMemoryStats {
  entriesStored: number
  /** entries refused: a vector of another dimension than the collection's */
  entriesRefused: number
  searches: number
  /** filtered searches the index could not fill, answered by an exact scan */
  exactScans: number
}

/**
 * The records this node keeps as a member of their placements, on disk (one LevelDB batch, fsynced,
 * per put) and indexed in memory, rebuilt from disk at start. Writes of one id apply in version
 * order whatever order they arrive in.
 */
export class LocalMemory {
  readonly stats: LocalMemoryStats = { entriesStored: 0, entriesRefused: 0, searches: 0, exactScans: 0 }
  private readonly collections = new Map<string, Collection>()
  /** the version of every record kept, deleted ones included: what a new write must beat */
  private readonly versions = new Map<string, Pick<MemoryEntry, 'version' | 'writer'>>()
  private nextLabel = 1n
  private readonly ns: Namespace<MemoryEntry>

  constructor (private readonly store: Store) {
    this.ns = store.memory
  }

  async load (): Promise<void> {
    for await (const [, entry] of this.ns.entries()) this.index(entry)
  }

  /** Applies the entries newer than what is kept; answers the ids now at the version sent. */
  async put (entries: MemoryEntry[]): Promise<string[]> {
    const fresh = entries.filter(e => {
      const kept = this.versions.get(key(e))
      if (kept !== undefined && !newer(e, kept)) return false
      const c = this.collections.get(e.collection)
      if (e.vector !== undefined && c !== undefined && c.live.size > 0 && c.dimensions !== e.vector.length) {
        this.stats.entriesRefused++
        return false
      }
      return true
    })
    if (fresh.length > 0) await this.store.write(fresh.map(e => this.ns.putOp(key(e), e)), { sync: true })
    for (const e of fresh) this.index(e)
    this.stats.entriesStored += fresh.length
    // an entry already at this version or newer counts as stored: a retried write is not a failure
    return entries.filter(e => { const kept = this.versions.get(key(e)); return kept !== undefined && !newer(e, kept) }).map(e => e.id)
  }

  /** The k nearest records of `collection` to `vector` that match `filter`, by cosine similarity. */
  search (collection: string, vector: number[], k: number, filter?: Record<string, unknown>): MemoryHit[] {
    this.stats.searches++
    const c = this.collections.get(collection)
    if (c === undefined || c.live.size === 0 || c.dimensions !== vector.length) return []
    const q = Float32Array.from(vector)
    const matches = (l: Live): boolean => filter === undefined || Object.entries(filter).every(([k, v]) => l.entry.metadata?.[k] === v)
    const hits: Array<{ live: Live, score: number }> = []
    // over-fetch for a filter, then fall back to an exact scan when the filter leaves too few
    const want = Math.min(c.live.size, filter === undefined ? k : k * 8)
    const found = c.index.search(q, want, 0)
    for (let i = 0; i < found.keys.length; i++) {
      const id = c.byLabel.get(found.keys[i] as bigint)
      const live = id === undefined ? undefined : c.live.get(id)
      if (live !== undefined && matches(live)) hits.push({ live, score: 1 - (found.distances[i] as number) })
    }
    if (filter !== undefined && hits.length < k && want < c.live.size) {
      this.stats.exactScans++
      hits.length = 0
      for (const live of c.live.values()) if (matches(live)) hits.push({ live, score: cosine(q, live.vector) })
      hits.sort((a, b) => b.score - a.score)
    }
    return hits.slice(0, k).map(({ live: { entry }, score }) => ({
      id: entry.id, score, version: entry.version, writer: entry.writer,
      ...(entry.text === undefined ? {} : { text: entry.text }),
      ...(entry.metadata === undefined ? {} : { metadata: entry.metadata })
    }))
  }

  /** Records kept, deleted ones excluded. */
  get size (): number {
    let n = 0
    for (const c of this.collections.values()) n += c.live.size
    return n
  }

  private index (e: MemoryEntry): void {
    const k = key(e)
    const kept = this.versions.get(k)
    if (kept !== undefined && !newer(e, kept)) return
    this.versions.set(k, { version: e.version, writer: e.writer })
    let c = this.collections.get(e.collection)
    const old = c?.live.get(e.id)
    if (c !== undefined && old !== undefined) {
      c.index.remove(old.label)
      c.byLabel.delete(old.label)
      c.live.delete(e.id)
    }
    if (e.deleted === true || e.vector === undefined) return
    if (c === undefined || c.live.size === 0) {
      c = new Collection(e.vector.length)
      this.collections.set(e.collection, c)
    }
    if (c.dimensions !== e.vector.length) return
    const label = this.nextLabel++
    const vector = Float32Array.from(e.vector)
    c.index.add(label, vector)
    c.byLabel.set(label, e.id)
    c.live.set(e.id, { entry: { ...e, vector: undefined }, label, vector })
  }
}

function key (e: Pick<MemoryEntry, 'collection' | 'id'>): string {
  return `${e.collection}/${e.id}`
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
