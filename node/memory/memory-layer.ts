import { createHash } from 'node:crypto'
import { COLLECTION, MAX_CANDIDATES, MAX_DIMENSIONS, MAX_MEMORY_BATCH, MAX_MEMORY_FRAME_BYTES, MAX_VERSION_AHEAD_MS, MEMORY_PROTOCOL, memoryRequestSchema, newer, putAnswerSchema, searchAnswerSchema, tombstonesAnswerSchema, vectorSchema } from '../../protocols/memory/index.js'
import { majority } from '../../protocols/task/certificate.js'
import { QuorumUnavailableError } from '../../protocols/lease/errors.js'
import { RpcEndpoint } from '../../protocols/rpc/index.js'
import { LocalMemory } from './local-memory.js'
import { EmbeddingsUnavailableError, InvalidMemoryError } from './errors.js'
import { checkRecordId, checkText, checkVector } from './record-checks.js'
import type { MemoryEntry, MemoryHit, MemoryRequest, Metadata, Tombstone } from '../../protocols/memory/index.js'
import type { Membership } from '../tasks/placement.js'
import type { ReplicaSets } from '../tasks/replica-sets.js'
import type { PresenceService } from '../../protocols/presence/index.js'
import type { Store } from '../store/store.js'
import type { Libp2p, Logger, PeerId } from '@libp2p/interface'

/** Texts to vectors, from an OpenAI-compatible /v1/embeddings. */
export type Embed = (texts: string[]) => Promise<number[][]>

export interface MemoryRecordInput { id: string, text?: string, vector?: number[], metadata?: Metadata }

export interface SearchQuery { text?: string, vector?: number[], k?: number, filter?: Record<string, string | number | boolean | null> }

export interface SearchAnswer {
  hits: Array<Omit<MemoryHit, 'version' | 'writer'>>
  /**
   * Who answered. Every placement has a member among the answering peers, so no record can be
   * missing, when fewer than R of the members this node knows stayed silent: then `complete`.
   */
  coverage: { asked: number, answered: number, members: number, silent: string[], complete: boolean }
}

export interface MemoryLayerInit {
  peerId: PeerId
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  store: Store
  membership: Membership
  presence: PresenceService
  replicaSets: ReplicaSets
  replicationFactor: number
  rpcTimeoutMs: number
  embed: Embed
  /** records of one collection on a peer past which its searches use HNSW instead of an exact scan */
  hnswAbove: number
  log: Logger
}

/**
 * Vector memory on the mesh. A record is placed like a task, on the R members nearest to a key of
 * its collection and id in XOR space, and a write answers once a majority of them has it on disk.
 * A search asks every live peer for its local top k and merges them, newest version of each id.
 */
export class MemoryLayer {
  readonly local: LocalMemory
  /** `staleHitsDropped`: hits a member's newer tombstone showed deleted; `tombstonesRepaired`: records those tombstones, sent on, took away from the members that held them */
  readonly stats = { puts: 0, deletes: 0, searches: 0, incompleteSearches: 0, badRequests: 0, retracted: 0, staleHitsDropped: 0, tombstonesRepaired: 0 }
  private readonly rpc: RpcEndpoint
  private lastVersion = 0

  constructor (private readonly init: MemoryLayerInit) {
    this.local = new LocalMemory(init.store, init.hnswAbove)
    this.rpc = new RpcEndpoint(init.libp2p, { protocol: MEMORY_PROTOCOL, handler: async body => this.serve(body), requestTimeoutMs: init.rpcTimeoutMs, maxFrameBytes: MAX_MEMORY_FRAME_BYTES, log: init.log })
  }

  async start (): Promise<void> {
    await this.local.load()
    await this.rpc.start()
  }

  async stop (): Promise<void> {
    await this.rpc.stop()
  }

  /** The members a record of `collection` with `id` is written to. */
  placement (collection: string, id: string): string[] {
    const key = createHash('sha256').update(`memory\n${collection}\n${id}`).digest('hex')
    return this.init.membership.choose(key).members
  }

  /** Stores records (embedding the texts that come without a vector); throws unless each is on a majority of its placement. */
  async put (collection: string, records: MemoryRecordInput[]): Promise<Array<{ id: string, replicas: number }>> {
    checkCollection(collection)
    if (records.length === 0 || records.length > MAX_MEMORY_BATCH) throw new InvalidMemoryError(`between 1 and ${MAX_MEMORY_BATCH} records per put`)
    if (new Set(records.map(r => r.id)).size !== records.length) throw new InvalidMemoryError('a put names each id once')
    for (const r of records) {
      checkRecordId(r.id)
      checkText(r.text, `record ${r.id.slice(0, 40)}`)
      if (r.vector !== undefined) checkVector(r.vector, `record ${r.id.slice(0, 40)}`)
    }
    const unembedded = records.filter(r => r.vector === undefined)
    if (unembedded.some(r => r.text === undefined)) throw new InvalidMemoryError('a record needs a vector or a text to embed')
    const vectors = unembedded.length === 0 ? [] : await this.embed(unembedded.map(r => r.text as string))
    const embedded = new Map(unembedded.map((r, i) => [r, vectors[i]]))
    const dims = new Set(records.map(r => (r.vector ?? embedded.get(r))?.length))
    if (dims.size > 1) throw new InvalidMemoryError('the vectors of one put differ in dimensions')
    const entries = records.map(r => ({ collection, id: r.id, ...(r.text === undefined ? {} : { text: r.text }), vector: r.vector ?? embedded.get(r), ...(r.metadata === undefined ? {} : { metadata: r.metadata }), version: this.version(), writer: this.self }) as MemoryEntry)
    this.stats.puts += entries.length
    return (await this.write(entries)).map(({ id, replicas }) => ({ id, replicas }))
  }

  /**
   * Writes a tombstone on a majority of the record's placement. Resolves with whether it took a
   * member's record away (a member from before members said so counts as one where it did): the
   * tombstone is written either way, so a put still on its way cannot bring the record back.
   */
  async delete (collection: string, id: string): Promise<boolean> {
    checkCollection(collection)
    this.stats.deletes++
    const [written] = await this.write([{ collection, id, version: this.version(), writer: this.self, deleted: true }])
    return written?.removed !== false
  }

  async search (collection: string, q: SearchQuery): Promise<SearchAnswer> {
    checkCollection(collection)
    this.stats.searches++
    checkText(q.text, 'the query')
    if (q.vector !== undefined) checkVector(q.vector, 'the query')
    const vector = q.vector ?? (q.text === undefined ? undefined : (await this.embed([q.text]))[0])
    if (vector === undefined) throw new InvalidMemoryError('a search needs a vector or a text')
    const k = q.k ?? 10
    const req: MemoryRequest = { op: 'search', collection, vector, k, ...(q.filter === undefined ? {} : { filter: q.filter }) }
    const peers = [...new Set([this.self, ...this.init.presence.liveIds()])]
    const answers = await Promise.all(peers.map(async peer => {
      try {
        const a = searchAnswerSchema.parse(await this.call(peer, req))
        return a.status === 'OK' ? { peer, hits: a.hits, dimensions: a.dimensions } : undefined
      } catch (err: any) {
        this.init.log('search of %s on %s failed: %s', collection, peer, err.message)
        return undefined
      }
    }))
    // a member whose copy of the collection has another size (it took a refused first write) answers
    // no hits; the query is refused only when no peer holds the collection at the query's size
    const sizes = new Set(answers.flatMap(a => a?.dimensions === undefined ? [] : [a.dimensions]))
    if (sizes.size > 0 && !sizes.has(vector.length)) throw new InvalidMemoryError(`collection ${collection} has vectors of ${[...sizes].join(' or ')} dimensions; the query has ${vector.length}`)
    const best = new Map<string, MemoryHit>()
    // who answered each id, at which version: a member that missed a delete (down then) still holds the record
    const holders = new Map<string, Array<{ peer: string, hit: MemoryHit }>>()
    for (const a of answers) {
      if (a === undefined) continue
      for (const h of a.hits) {
        const b = best.get(h.id)
        if (b === undefined || newer(h, b)) best.set(h.id, h)
        holders.set(h.id, [...holders.get(h.id) ?? [], { peer: a.peer, hit: h }])
      }
    }
    const answered = new Set(answers.flatMap(a => a === undefined ? [] : [a.peer]))
    const candidates = [...best.values()].sort((a, b) => b.score - a.score).slice(0, Math.min(MAX_CANDIDATES, k * 4))
    const deleted = await this.tombstones(collection, candidates, holders, [...answered])
    const hits = candidates.filter(h => !deleted.has(h.id)).slice(0, k).map(({ version: _v, writer: _w, ...h }) => h)
    const members = this.init.membership.members()
    const silent = members.filter(m => !answered.has(m))
    const complete = silent.length < Math.min(this.init.replicationFactor, Math.max(1, members.length))
    if (!complete) this.stats.incompleteSearches++
    return { hits, coverage: { asked: peers.length, answered: answered.size, members: members.length, silent, complete } }
  }

  /**
   * The candidates that a newer tombstone on an answering peer shows deleted. A member down during a
   * delete kept the record, and answered it in every search since: the others' tombstones win, and
   * are sent to it (not awaited), so it comes back no more. With one peer answering, nothing to ask.
   */
  private async tombstones (collection: string, candidates: MemoryHit[], holders: Map<string, Array<{ peer: string, hit: MemoryHit }>>, peers: string[]): Promise<Set<string>> {
    if (candidates.length === 0 || peers.length < 2) return new Set()
    const req: MemoryRequest = { op: 'tombstones', collection, ids: candidates.map(h => h.id) }
    const newest = new Map<string, Tombstone>()
    // as a put refuses it: a version far ahead of every clock would hide the record for good
    const latest = Date.now() + MAX_VERSION_AHEAD_MS
    await Promise.all(peers.map(async peer => {
      try {
        const a = tombstonesAnswerSchema.parse(await this.call(peer, req))
        if (a.status !== 'OK') return
        for (const t of a.deleted) { const n = newest.get(t.id); if (t.version <= latest && (n === undefined || newer(t, n))) newest.set(t.id, t) }
      } catch (err: any) {
        this.init.log('tombstones of %s on %s failed: %s', collection, peer, err.message)
      }
    }))
    const dropped = new Set<string>()
    const repairs = new Map<string, MemoryEntry[]>()
    for (const h of candidates) {
      const t = newest.get(h.id)
      if (t === undefined || !newer(t, h)) continue
      dropped.add(h.id)
      this.stats.staleHitsDropped++
      for (const { peer, hit } of holders.get(h.id) ?? []) {
        if (newer(t, hit)) repairs.set(peer, [...repairs.get(peer) ?? [], { collection, id: t.id, version: t.version, writer: t.writer, deleted: true }])
      }
    }
    for (const [peer, entries] of repairs) {
      void this.call(peer, { op: 'put', entries }).then(answer => {
        const a = putAnswerSchema.safeParse(answer)
        // what the put took away: a tombstone it had already, or a newer write of the id, is no repair
        if (a.success && a.data.status === 'OK') this.stats.tombstonesRepaired += a.data.removed?.length ?? 0
      }, (err: Error) => { this.init.log('could not send %d tombstone(s) to %s: %s', entries.length, peer, err.message) })
    }
    return dropped
  }

  private get self (): string {
    return this.init.peerId.toString()
  }

  /** The writer's clock, made to rise, so two writes of one id from here never tie. */
  private version (): number {
    this.lastVersion = Math.max(Date.now(), this.lastVersion + 1)
    return this.lastVersion
  }

  private async embed (texts: string[]): Promise<number[][]> {
    const vectors = await this.init.embed(texts)
    if (vectors.length !== texts.length) throw new EmbeddingsUnavailableError(`the embeddings endpoint answered ${vectors.length} vectors for ${texts.length} texts`)
    // what the endpoint answers is checked as a client's vector is: members refuse what a client could not send
    for (const [i, v] of vectors.entries()) {
      if (!vectorSchema.safeParse(v).success) throw new EmbeddingsUnavailableError(`the embeddings endpoint answered text ${i} with no vector of 1 to ${MAX_DIMENSIONS} finite numbers`)
      try {
        checkVector(v, `the embeddings endpoint's vector for text ${i}`)
      } catch (err: any) {
        throw new EmbeddingsUnavailableError(String(err?.message ?? err))
      }
    }
    return vectors
  }

  /** Each entry to every member of its placement, at once; resolves when each is on a majority. */
  private async write (entries: MemoryEntry[]): Promise<Array<{ id: string, replicas: number, removed?: boolean }>> {
    const byMember = new Map<string, MemoryEntry[]>()
    const placements = entries.map(e => this.placement(e.collection, e.id))
    entries.forEach((e, i) => { for (const m of placements[i] as string[]) byMember.set(m, [...byMember.get(m) ?? [], e]) })
    // acks by peer: a member that answers twice for an id counts once
    const acks = new Map<string, Set<string>>()
    const refusals = new Map<string, string>()
    // ids a member said its record of was taken away; undefined once a member could not say
    let removed: Set<string> | undefined = new Set<string>()
    const errors: string[] = []
    await Promise.all([...byMember].map(async ([peer, batch]) => {
      try {
        const a = putAnswerSchema.parse(await this.call(peer, { op: 'put', entries: batch }))
        if (a.status !== 'OK') throw new Error(a.reason)
        for (const id of a.stored) acks.set(id, (acks.get(id) ?? new Set()).add(peer))
        for (const r of a.refused ?? []) refusals.set(r.id, r.reason)
        if (a.removed === undefined) removed = undefined
        else for (const id of a.removed) removed?.add(id)
      } catch (err: any) {
        errors.push(`${peer.slice(-6)}: ${String(err.message)}`)
      }
    }))
    const out = entries.map((e, i) => ({ id: e.id, replicas: [...acks.get(e.id) ?? []].filter(p => (placements[i] as string[]).includes(p)).length, need: majority((placements[i] as string[]).length) }))
    const short = out.filter(o => o.replicas < o.need)
    // refused for what it is (a vector of another dimension), not for who answered: the caller's to fix
    const refused = short.filter(o => refusals.has(o.id)).map(o => o.id)
    if (refused.length > 0) {
      await this.retract(entries.filter(e => refused.includes(e.id)), acks)
      throw new InvalidMemoryError(`record ${refused[0]} refused: ${refusals.get(refused[0] as string) ?? ''}`)
    }
    if (short.length > 0) throw new QuorumUnavailableError(`${short.length} record(s) written to fewer than a majority of their placement (${short.slice(0, 3).map(o => `${o.id}: on ${o.replicas}, ${o.need} needed`).join(', ')})${errors.length === 0 ? '' : `; ${errors.slice(0, 3).join(', ')}`}`)
    return out.map(({ id, replicas }) => ({ id, replicas, ...(removed === undefined ? {} : { removed: removed.has(id) }) }))
  }

  /**
   * Takes back a write the caller is told was refused, from the members that stored it anyway: a
   * tombstone at a later version. Otherwise a member that had no records of the collection kept it,
   * searches returned it, and its collection took that record's dimensions (two first writes of
   * different sizes at once split a collection's members for good). Best effort: a member that
   * misses it keeps the record, as before.
   */
  private async retract (entries: MemoryEntry[], acks: Map<string, Set<string>>): Promise<void> {
    const byMember = new Map<string, MemoryEntry[]>()
    for (const e of entries) {
      const tombstone: MemoryEntry = { collection: e.collection, id: e.id, version: this.version(), writer: this.self, deleted: true }
      for (const peer of acks.get(e.id) ?? []) byMember.set(peer, [...byMember.get(peer) ?? [], tombstone])
    }
    await Promise.all([...byMember].map(async ([peer, batch]) => {
      await this.call(peer, { op: 'put', entries: batch }).catch(err => { this.init.log('could not take back a refused write from %s: %s', peer, err.message) })
    }))
    this.stats.retracted += entries.length
  }

  private async call (peer: string, req: MemoryRequest): Promise<unknown> {
    if (peer === this.self) return this.answer(req)
    return this.rpc.request(this.init.replicaSets.peerId(peer), req)
  }

  /** A peer's request: parsed first; a bad one is an ERROR answer and counted. */
  private async serve (body: unknown): Promise<unknown> {
    const parsed = memoryRequestSchema.safeParse(body)
    if (!parsed.success) {
      this.stats.badRequests++
      return { status: 'ERROR', reason: `bad request: ${parsed.error.issues[0]?.message ?? 'invalid'}` }
    }
    return this.answer(parsed.data)
  }

  private async answer (req: MemoryRequest): Promise<unknown> {
    if (req.op === 'put') return { status: 'OK', ...await this.local.put(req.entries) }
    if (req.op === 'tombstones') return { status: 'OK', deleted: this.local.tombstonesOf(req.collection, req.ids) }
    const dimensions = this.local.dimensionsOf(req.collection)
    return { status: 'OK', hits: this.local.search(req.collection, req.vector, req.k, req.filter), ...(dimensions === undefined ? {} : { dimensions }) }
  }
}

function checkCollection (name: string): void {
  if (!COLLECTION.test(name)) throw new InvalidMemoryError('a collection name is 1-64 letters, digits, ".", "_" or "-"')
}
