import { MAX_VERSION_AHEAD_MS, newer } from '../../protocols/memory/index.js'
import { Collection } from './collection.js'
import type { MemoryEntry, MemoryHit, Tombstone } from '../../protocols/memory/index.js'
import type { Namespace } from '../store/namespace.js'
import type { Store } from '../store/store.js'

/** `removed`: ids whose record this replica held, which a tombstone of this put took away */
export interface PutOutcome { stored: string[], refused?: Array<{ id: string, reason: string }>, removed: string[] }

export interface LocalMemoryStats {
  entriesStored: number
  /** entries refused: a vector of another dimension than the collection's */
  entriesRefused: number
  searches: number
}

/**
 * The records this node keeps as a member of their placements, on disk (one LevelDB batch, fsynced,
 * per put) and indexed in memory, rebuilt from disk at start. Writes of one id apply in version
 * order whatever order they arrive in.
 */
export class LocalMemory {
  readonly stats: LocalMemoryStats = { entriesStored: 0, entriesRefused: 0, searches: 0 }
  private readonly collections = new Map<string, Collection>()
  /** the version of every record kept, deleted ones included: what a new write must beat */
  private readonly versions = new Map<string, Pick<MemoryEntry, 'version' | 'writer' | 'deleted'>>()
  private readonly ns: Namespace<MemoryEntry>
  private queue: Promise<void> = Promise.resolve()

  /** `hnswAbove`: records of one collection on this peer past which its search is approximate (HNSW) */
  constructor (private readonly store: Store, private readonly hnswAbove = 250_000) {
    this.ns = store.memory
  }

  async load (): Promise<void> {
    for await (const [, entry] of this.ns.entries()) this.index(entry)
  }

  /**
   * Applies the entries newer than what is kept; answers the ids now at the version sent, and the
   * ids whose record this put's tombstones took away (held before it, not after). Puts run
   * one after another: the version check and the write of one id must not interleave with another's.
   */
  async put (entries: MemoryEntry[]): Promise<PutOutcome> {
    const run = this.queue.then(async () => this.putNow(entries))
    this.queue = run.then(() => {}, () => {})
    return run
  }

  private async putNow (entries: MemoryEntry[]): Promise<PutOutcome> {
    const latest = Date.now() + MAX_VERSION_AHEAD_MS
    const refused: Array<{ id: string, reason: string }> = []
    // the dimensions each collection will have: its own, else the first vector of this batch
    const dims = new Map<string, number>()
    const fresh = entries.filter(e => {
      const kept = this.versions.get(key(e))
      if (kept !== undefined && !newer(e, kept)) return false
      // a version far ahead of every clock would pin the record against any later write
      if (e.version > latest) {
        this.stats.entriesRefused++
        refused.push({ id: e.id, reason: 'its version is ahead of this replica\'s clock' })
        return false
      }
      if (e.vector === undefined) return true
      const c = this.collections.get(e.collection)
      const want = dims.get(e.collection) ?? (c !== undefined && c.size > 0 ? c.dimensions : e.vector.length)
      dims.set(e.collection, want)
      if (want !== e.vector.length) {
        this.stats.entriesRefused++
        refused.push({ id: e.id, reason: `a vector of ${e.vector.length} dimensions; collection ${e.collection} has ${want}` })
        return false
      }
      return true
    })
    const held = (e: MemoryEntry): boolean => this.collections.get(e.collection)?.has(e.id) === true
    // what a tombstone of this put may take away; whether it did is read once the whole put applied
    const heldBefore = fresh.filter(e => e.deleted === true && held(e))
    if (fresh.length > 0) await this.store.write(fresh.map(e => this.ns.putOp(key(e), e)), { sync: true })
    for (const e of fresh) this.index(e)
    this.stats.entriesStored += fresh.length
    const removed = [...new Set(heldBefore.filter(e => !held(e)).map(e => e.id))]
    // an entry already at this version or newer counts as stored: a retried write is not a failure
    const stored = entries.filter(e => { const kept = this.versions.get(key(e)); return kept !== undefined && !newer(e, kept) }).map(e => e.id)
    return { stored, removed, ...(refused.length === 0 ? {} : { refused }) }
  }

  /** The dimensions of `collection` here, if this replica holds any of it. */
  dimensionsOf (collection: string): number | undefined {
    const c = this.collections.get(collection)
    return c === undefined || c.size === 0 ? undefined : c.dimensions
  }

  /** The k nearest records of `collection` to `vector` that match `filter`, by cosine similarity. */
  search (collection: string, vector: number[], k: number, filter?: Record<string, unknown>): MemoryHit[] {
    this.stats.searches++
    const c = this.collections.get(collection)
    if (c === undefined || c.size === 0 || c.dimensions !== vector.length) return []
    // an empty filter filters nothing, and must not force the slow path
    const f = filter === undefined || Object.keys(filter).length === 0 ? undefined : filter
    return c.search(Float32Array.from(vector), k, f).map(({ entry, score }) => ({
      id: entry.id, score, version: entry.version, writer: entry.writer,
      ...(entry.text === undefined ? {} : { text: entry.text }),
      ...(entry.metadata === undefined ? {} : { metadata: entry.metadata })
    }))
  }

  /** The ids among `ids` whose newest version here is a delete, with that version. */
  tombstonesOf (collection: string, ids: string[]): Tombstone[] {
    return ids.flatMap(id => {
      const kept = this.versions.get(key({ collection, id }))
      return kept?.deleted === true ? [{ id, version: kept.version, writer: kept.writer }] : []
    })
  }

  /** Records kept, deleted ones excluded. */
  get size (): number {
    let n = 0
    for (const c of this.collections.values()) n += c.size
    return n
  }

  private index (e: MemoryEntry): void {
    const k = key(e)
    const kept = this.versions.get(k)
    if (kept !== undefined && !newer(e, kept)) return
    this.versions.set(k, { version: e.version, writer: e.writer, ...(e.deleted === true ? { deleted: true } : {}) })
    let c = this.collections.get(e.collection)
    c?.delete(e.id)
    if (e.deleted === true || e.vector === undefined) return
    // an emptied collection takes the dimensions of its next record
    if (c === undefined || c.size === 0) {
      c = new Collection(e.vector.length, this.hnswAbove)
      this.collections.set(e.collection, c)
    }
    if (c.dimensions !== e.vector.length) return
    c.set({ ...e, vector: undefined }, e.vector)
  }
}

function key (e: Pick<MemoryEntry, 'collection' | 'id'>): string {
  return `${e.collection}/${e.id}`
}
