import { z } from 'zod'
import { jsonValue } from './json-value.js'
import { finalValueSchema, signatureSchema } from './certificate.js'
import { placementSchema } from './record.js'
import type { TaskRecord } from './record.js'

/** This replica's signed vote for the final outcome of one generation: cast at most once. */
export const castVoteSchema = z.object({
  generation: z.number().int().nonnegative(),
  epoch: z.number().int().nonnegative(),
  term: z.number().int().nonnegative(),
  value: finalValueSchema,
  sig: signatureSchema
}).strict()

export type CastVote = z.infer<typeof castVoteSchema>

/**
 * A replica's own promises about one task: its lease grant, its vote, its sealed epochs. Never
 * merged with another replica's: each keeps its own, on disk before any answer relies on it.
 */
export const leaseStateSchema = z.object({
  claimId: z.string().max(64).optional(),
  holder: z.string().max(128).optional(),
  term: z.number().int().nonnegative(),
  expiresAt: z.number().optional(),
  /** the highest term ever granted here for the task: a new grant is always above it */
  maxTerm: z.number().int().nonnegative(),
  /** the holder renewed here, so it held a majority (a claim short of one gives its grants back, never renews) */
  renewed: z.literal(true).optional(),
  vote: castVoteSchema.optional(),
  /** epochs up to this one are sealed here: moved away, no operation of theirs is served */
  sealedEpoch: z.number().int().nonnegative().optional(),
  /** the placement the seal was for: one move per epoch wins, the others learn it */
  sealedFor: placementSchema.optional(),
  /**
   * Signals this member kept in a signal's first round, by name (a name is waited for once a
   * task; the generation it came in is kept for the record): not yet chosen, so not in the
   * record's journal, which copies merge. Here, where nothing merges, a member keeps the first
   * value it was sent, and refuses another: only one value can reach a majority. The second round
   * writes the chosen value into the journal.
   */
  accepted: z.record(z.string().max(200), z.object({ data: jsonValue(), at: z.number(), generation: z.number().int().nonnegative() }).strict()).optional()
}).strict()

export type LeaseState = z.infer<typeof leaseStateSchema>

export const storedResultSchema = z.object({
  claimId: z.string().max(64),
  peer: z.string().max(128),
  value: jsonValue(),
  size: z.number().int().nonnegative(),
  at: z.number()
}).strict()

export type StoredResult = z.infer<typeof storedResultSchema>

/**
 * What the replica logic needs from storage. The node backs it with LevelDB; tests may use the
 * memory implementation below. Writes marked durable are on disk before they resolve, because a
 * peer is told OK right after.
 */
/** What one state change writes: any of the three, on disk together or not at all. */
export interface ReplicaWrite {
  record?: TaskRecord
  /** the copy `record` replaces, if this store held one: what a store's indexes of records were built from */
  previous?: TaskRecord
  lease?: LeaseState
  result?: StoredResult
}

export interface ReplicaStore {
  /**
   * One operation's writes, atomically and durably (fsynced), before it resolves; with `lazy` the
   * batch is not fsynced of its own: for what is already certain elsewhere (see Replica.persist)
   */
  write: (id: string, change: ReplicaWrite, options?: { lazy?: boolean }) => Promise<void>
  getRecord: (id: string) => Promise<TaskRecord | undefined>
  getLease: (id: string) => Promise<LeaseState | undefined>
  getResult: (id: string) => Promise<StoredResult | undefined>
  /** every record, in id order */
  records: () => AsyncIterable<TaskRecord>
  /** the ids of every stored result, in id order: keys only, so a start reads no result */
  resultIds: () => AsyncIterable<string>
  /** forgets a task: its record, lease and result (retention) */
  deleteTask: (record: TaskRecord) => Promise<void>
  /** whether a part of the task's state was found unreadable on disk (the getters gave undefined for it) */
  isDamaged?: (id: string) => boolean
  /** A result read from disk for the certified claim whose bytes do not hash to the certificate's: altered on disk. Counted and told; the result is then read from the placement. */
  corruptResult?: (id: string, why: string) => void
}

export class MemoryReplicaStore implements ReplicaStore {
  readonly recordMap = new Map<string, TaskRecord>()
  readonly leaseMap = new Map<string, LeaseState>()
  readonly resultMap = new Map<string, StoredResult>()

  async getRecord (id: string): Promise<TaskRecord | undefined> { return structuredClone(this.recordMap.get(id)) }
  async write (id: string, change: ReplicaWrite, _options?: { lazy?: boolean }): Promise<void> {
    if (change.result !== undefined) this.resultMap.set(id, structuredClone(change.result))
    if (change.lease !== undefined) this.leaseMap.set(id, structuredClone(change.lease))
    if (change.record !== undefined) this.recordMap.set(id, structuredClone(change.record))
  }

  async getLease (id: string): Promise<LeaseState | undefined> { return structuredClone(this.leaseMap.get(id)) }
  async getResult (id: string): Promise<StoredResult | undefined> { return structuredClone(this.resultMap.get(id)) }
  async deleteTask (record: TaskRecord): Promise<void> {
    const id = record.task.id
    this.recordMap.delete(id)
    this.leaseMap.delete(id)
    this.resultMap.delete(id)
  }

  async * records (): AsyncIterable<TaskRecord> {
    for (const id of [...this.recordMap.keys()].sort()) {
      const r = this.recordMap.get(id)
      if (r !== undefined) yield structuredClone(r)
    }
  }

  async * resultIds (): AsyncIterable<string> {
    yield * [...this.resultMap.keys()].sort()
  }
}

/** Serializes async work per key: every lease decision is a read-modify-write. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>()

  async run<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const tail = prev.then(async () => mine)
    this.tails.set(key, tail)
    await prev
    try {
      return await fn()
    } finally {
      release()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}
