import { createHash } from 'node:crypto'
import { canonicalJson } from '../task/canonical.js'
import type { TaskRecord } from '../task/record.js'

/**
 * Digests for anti-entropy. Two replicas agree on a record when the hashes of its substance agree.
 * Ids fall into buckets by their first hex digits, as many digits as keep a bucket to about
 * BUCKET_TARGET ids (bucketDigits); a steady mesh compares the bucket hashes of each pair of peers
 * and sends nothing else.
 */
export function recordHash (record: TaskRecord): string {
  return createHash('sha256').update(substance(record)).digest('hex').slice(0, 16)
}

/** The version of `recordHash` a digest names: peers that hash otherwise cannot compare. */
export const RECORD_HASHING = 3

/**
 * What copies of a task must agree on, as one JSON array in a fixed order. Each member stamps
 * times by its own clock, and a certificate is any majority's signatures over the one value:
 * members that committed through different votes hold different signatures for the same outcome.
 * Copies that differ only there hold the same task; hashing whole records made anti-entropy push
 * about four records a task, a fifth to a third of a task's CPU. An attempt, an outcome or a
 * placement that differs still does.
 *
 * The task's id stands for what it hashes (capability, input, submitter, key or nonce): a record
 * is stored only if its id is its content's hash. Fields are listed, not walked: the canonical
 * JSON of every record (version 2) was a twentieth of what a loaded node allocated. Free-form
 * parts (the journal, a wait, a move's binding, earlier placements) keep their canonical JSON.
 * SUBSTANCE_FIELDS names every field, hashed or not; a test holds it to the schemas.
 */
function substance (r: TaskRecord): string {
  const t = r.task
  const f = r.final
  const attempts: unknown[] = []
  for (const a of r.attempts) attempts.push(a.claimId, a.generation, a.peer, a.outcome, a.error ?? null, a.endedAt !== undefined)
  return JSON.stringify([
    t.id, t.createdAt, t.maxAttempts, t.timeoutMs, t.deadline, t.parent ?? null, t.traceparent ?? null,
    r.placement.epoch, r.placement.members, free(r.placement.mustDecide), free(r.previous),
    r.generation, attempts,
    f === undefined ? null : [f.state, f.generation, f.claimId ?? null, f.peer ?? null, f.resultSize ?? null, f.cert.epoch, f.cert.value.resultHash ?? null],
    r.droppedGeneration ?? null, free(r.journal), free(r.waiting)
  ])
}

const free = (value: unknown): string | null => value === undefined ? null : canonicalJson(value)

/** Each record field, and whether the substance hashes it (false: informative, or named by the id). */
export const SUBSTANCE_FIELDS = {
  record: { task: true, placement: true, previous: true, generation: true, attempts: true, final: true, droppedGeneration: true, notBefore: false, journal: true, waiting: true, updatedAt: false },
  task: { id: true, capability: false, input: false, submitter: false, idempotencyKey: false, nonce: false, createdAt: true, maxAttempts: true, timeoutMs: true, deadline: true, parent: true, traceparent: true },
  placement: { epoch: true, members: true, mustDecide: true },
  attempt: { claimId: true, generation: true, peer: true, startedAt: false, endedAt: true, outcome: true, error: true },
  final: { state: true, at: false, generation: true, reason: false, peer: true, claimId: true, resultSize: true, cert: true }
} as const

/** Ids a bucket holds on average, at most, up to the largest digest (MAX_BUCKET_DIGITS). */
export const BUCKET_TARGET = 64
/** 16^3 buckets: a digest of about 106 KB, however many records two peers share. */
export const MAX_BUCKET_DIGITS = 3
/** What one bucket adds to a digest's JSON: `"abc":"<16 hex>",` */
const BUCKET_BYTES = 26

/**
 * Hex digits of the bucket names for `count` shared ids: 1 (16 buckets) up to 1,024 ids, then one
 * more per sixteenfold, as long as the digest takes at most `maxBytes`. With a fixed 16 buckets, a
 * record or two in flux in each (always so under load) made every bucket differ, and each round
 * then sent every shared id: a cost that grew with every task a node ever kept.
 */
export function bucketDigits (count: number, maxBytes = Infinity): number {
  let digits = 1
  while (digits < MAX_BUCKET_DIGITS && count > BUCKET_TARGET * 16 ** digits && 16 ** (digits + 1) * BUCKET_BYTES <= maxBytes) digits++
  return digits
}

export const bucketOf = (id: string, digits = 1): string => id.slice(0, digits)

/** The bucket digits a digest was made with: the length of its bucket names (1 for an empty one). */
export function digitsOf (buckets: Record<string, string>): number {
  for (const name in buckets) return name.length
  return 1
}

/** Hash of each bucket over the given ids (order-free: ids are sorted first). */
export function bucketHashes (ids: Iterable<string>, hashOf: (id: string) => string | undefined, digits = 1): Record<string, string> {
  const byBucket = new Map<string, string[]>()
  for (const id of ids) {
    const h = hashOf(id)
    if (h === undefined) continue
    const bucket = bucketOf(id, digits)
    const list = byBucket.get(bucket)
    if (list === undefined) byBucket.set(bucket, [`${id}:${h}`])
    else list.push(`${id}:${h}`)
  }
  const out: Record<string, string> = {}
  for (const [bucket, entries] of byBucket) out[bucket] = createHash('sha256').update(entries.sort().join('\n')).digest('hex').slice(0, 16)
  return out
}

/** Buckets whose hash differs, or that only one side has. */
export function differingBuckets (mine: Record<string, string>, theirs: Record<string, string>): string[] {
  const all = new Set([...Object.keys(mine), ...Object.keys(theirs)])
  return [...all].filter(b => mine[b] !== theirs[b]).sort()
}

/**
 * How many records may wait for their hash (bounds the records kept for it, about 1.8 KB of heap each);
 * past it the oldest is hashed. A record waits a few seconds under load before it is final, so
 * the oldest is hashed once, as anti-entropy would hash it.
 */
export const MAX_UNHASHED = 2_000

/**
 * The hash of every record a replica holds, computed when asked (anti-entropy reads them every
 * few seconds), not on every write: a task is written several times on its way, and hashing the
 * whole record each time was a visible part of its cost. Also the index of which ids are held.
 */
export class RecordHashes {
  private readonly hashes = new Map<string, string | undefined>()
  private readonly unhashed = new Map<string, TaskRecord>()

  /**
   * A record written; `compared`: whether anti-entropy compares it (this node is a member of its
   * placement). A copy kept outside its placement is never compared: it is marked held, and
   * neither hashed nor kept for hashing (under load such copies filled the queue, and each was
   * hashed for nothing).
   */
  set (record: TaskRecord, compared = true): void {
    const id = record.task.id
    this.hashes.set(id, undefined)
    // (set again at the back: the least recently written is hashed first, most likely final by then)
    this.unhashed.delete(id)
    if (!compared) return
    this.unhashed.set(id, record)
    // one at a time, the oldest first: hashing all of them at once held the event loop 130 ms on an
    // idle machine (10,000 then)
    if (this.unhashed.size > MAX_UNHASHED) this.get(this.unhashed.keys().next().value as string)
  }

  /** Records written since their hash was last asked for, not hashed yet. */
  get pending (): number {
    return this.unhashed.size
  }

  get (id: string): string | undefined {
    const record = this.unhashed.get(id)
    if (record !== undefined) {
      this.unhashed.delete(id)
      this.hashes.set(id, recordHash(record))
    }
    return this.hashes.get(id)
  }

  has (id: string): boolean {
    return this.hashes.has(id)
  }

  delete (id: string): void {
    this.hashes.delete(id)
    this.unhashed.delete(id)
  }

  keys (): IterableIterator<string> {
    return this.hashes.keys()
  }

  get size (): number {
    return this.hashes.size
  }
}
