import { z } from 'zod'
import { jsonValue } from './json-value.js'
import { canonicalOrder } from './canonical.js'
import { SIGNAL_PREFIX, mergeJournals } from './journal.js'
import { certificateSchema, finalValueSchema, isValidCertificate, resultHash } from './certificate.js'
import type { Certificate, FinalValue, TrustedVote } from './certificate.js'
import { peerIdSchema, taskSchema } from './schema.js'

export const TASK_STATES = ['pending', 'running', 'waiting', 'completed', 'failed', 'canceled', 'dead'] as const
export type TaskState = typeof TASK_STATES[number]

const attemptSchema = z.object({
  /** chosen by the claimant; the same on every replica, unlike the per-replica terms */
  claimId: z.string().min(1).max(64),
  generation: z.number().int().nonnegative(),
  peer: peerIdSchema,
  startedAt: z.number(),
  endedAt: z.number().optional(),
  /**
   * released: granted on too few replicas, given back before running; suspended: the agent waits
   * (ctx.waitFor) and gave the lease back. Neither counts against maxAttempts.
   */
  outcome: z.enum(['running', 'released', 'suspended', 'completed', 'failed', 'expired']),
  error: z.string().max(4096).optional()
}).strict()

const finalSchema = z.object({
  state: z.enum(['completed', 'canceled', 'dead']),
  /** when the replica that stored it learned it: informative, never compared */
  at: z.number(),
  generation: z.number().int().nonnegative(),
  reason: z.string().max(4096).optional(),
  peer: peerIdSchema.optional(),
  claimId: z.string().max(64).optional(),
  resultSize: z.number().int().nonnegative().optional(),
  /** a majority of the placement signed this outcome: without it there is no final state */
  cert: certificateSchema
}).strict()

export const waitSchema = z.object({
  name: z.string().min(1).max(200),
  claimId: z.string().max(64),
  since: z.number(),
  until: z.number(),
  schema: z.record(z.string(), jsonValue()).optional()
}).strict()
export type Wait = z.infer<typeof waitSchema>

/** The journal key a signal's data is kept under. */
export const signalKey = (name: string): string => `${SIGNAL_PREFIX}${name}`

/** Whether the record waits for a signal now, by `now` (a member's clock). */
export function isWaiting (record: TaskRecord, now = Date.now()): boolean {
  const w = record.waiting
  return w !== undefined && record.final === undefined && record.journal?.[signalKey(w.name)] === undefined && now <= w.until
}

/**
 * The task's pinned replica set: chosen once at submit, changed only by an epoch change. Every
 * operation needs a majority of `members` (of its full size), so two views never disagree on it.
 */
/**
 * How many attempts a record keeps. Released partial claims count against no budget and come with
 * every contended claim, so a long-lived task under churn (or a peer's merge) can gather more: a
 * longer list would make the record fail its schema and read as corrupt. See capAttempts.
 */
export const MAX_ATTEMPTS_KEPT = 1000

export const placementSchema = z.object({
  epoch: z.number().int().nonnegative(),
  members: z.array(peerIdSchema).min(1).max(16),
  /**
   * Set by a move whose seal found a value the old epoch may have certified: in this epoch the
   * members may decide that value only (for that generation), never grant a lease. It travels with
   * the placement, so a member that reaches the epoch by any way (an install, taking the move from
   * another member, a pushed copy) is bound by it, not only the members the install reached.
   */
  mustDecide: z.object({ generation: z.number().int().nonnegative(), value: finalValueSchema }).strict().optional()
}).strict()

export type Placement = z.infer<typeof placementSchema>

/**
 * What a peer knows of a task. Records merge (see mergeRecords) in any order and any number of
 * times to the same value, so anti-entropy, notices and fetches can all feed one copy.
 */
export const taskRecordSchema = z.object({
  task: taskSchema,
  placement: placementSchema,
  /** the placements this task moved from, oldest first: a certificate made in an earlier epoch is checked against its members */
  previous: z.array(placementSchema).max(16).optional(),
  /** bumped by each redrive from the dead-letter list: a new attempt budget */
  generation: z.number().int().nonnegative(),
  attempts: z.array(attemptSchema).max(MAX_ATTEMPTS_KEPT),
  final: finalSchema.optional(),
  /** the generation whose dead-letter entry was dropped */
  droppedGeneration: z.number().int().optional(),
  /** earliest time the next attempt may start (retry backoff) */
  notBefore: z.number().optional(),
  /**
   * Durable steps of the agent (model calls, tool results) by key: a peer that takes the task over
   * replays them instead of doing them again.
   */
  journal: z.record(z.string().max(256), jsonValue()).optional(),
  /**
   * The agent waits (ctx.waitFor) for the signal `name`: the task holds no lease and no slot, and no
   * member grants one until the signal is in the journal (`signal:<name>`) or `until` passes by the
   * member's clock. `schema` is the JSON schema the signal's data must match.
   */
  waiting: waitSchema.optional(),
  updatedAt: z.number()
}).strict()

export type Attempt = z.infer<typeof attemptSchema>
export type FinalState = z.infer<typeof finalSchema>
export type TaskRecord = z.infer<typeof taskRecordSchema>

export function newRecord (task: TaskRecord['task'], placement: Placement, now = Date.now()): TaskRecord {
  return { task, placement, generation: 0, attempts: [], updatedAt: now }
}

/** The same placement: same epoch, same members in the same order. */
export function samePlacement (a: Placement | undefined, b: Placement): boolean {
  return a !== undefined && a.epoch === b.epoch && a.members.length === b.members.length && a.members.every((m, i) => b.members[i] === m)
}

/** Whether `result` is the one a certified outcome names: by claim and by hash. */
export function resultMatches (value: FinalValue | undefined, result: { claimId: string, value: unknown } | undefined): boolean {
  return value !== undefined && result !== undefined && value.claimId === result.claimId && value.resultHash === resultHash(result.value)
}

/** The final state a certificate makes, as a record stores it. */
export function finalOf (cert: Certificate, at: number, executor?: { peer: string, size: number }): FinalState {
  const v = cert.value
  return {
    state: v.state,
    at,
    generation: cert.generation,
    ...(v.reason === undefined ? {} : { reason: v.reason }),
    ...(v.claimId === undefined ? {} : { claimId: v.claimId }),
    ...(executor === undefined ? {} : { peer: executor.peer, resultSize: executor.size }),
    cert
  }
}

/** The members of one epoch of the task's placement, if the record knows it. */
export function membersOf (record: TaskRecord, epoch: number): string[] | undefined {
  if (epoch === record.placement.epoch) return record.placement.members
  return record.previous?.find(p => p.epoch === epoch)?.members
}

/** Whether `final` (the record's own by default) carries a valid certificate for this task. */
export function hasValidFinal (record: TaskRecord, final: FinalState | undefined = record.final, trusted?: TrustedVote): boolean {
  if (final === undefined) return false
  const c = final.cert
  if (c.id !== record.task.id || c.generation !== final.generation || c.value.state !== final.state || c.value.claimId !== final.claimId) return false
  const members = membersOf(record, c.epoch)
  return members !== undefined && isValidCertificate(c, members, trusted)
}

function mergePrevious (a: Placement[] | undefined, b: Placement[] | undefined, current: number): Placement[] | undefined {
  const byEpoch = new Map<number, Placement>()
  for (const p of [...(a ?? []), ...(b ?? [])]) {
    const seen = byEpoch.get(p.epoch)
    if (p.epoch < current && (seen === undefined || canonicalOrder(p, seen) < 0)) byEpoch.set(p.epoch, p)
  }
  return byEpoch.size === 0 ? undefined : [...byEpoch.values()].sort((x, y) => x.epoch - y.epoch)
}

// suspended outranks expired: a member that missed the wait saw the lease lapse, but no attempt was spent
const OUTCOME_RANK: Record<Attempt['outcome'], number> = { running: 0, released: 1, expired: 2, suspended: 3, failed: 4, completed: 5 }

/**
 * Of two placements of one epoch, the one that binds it to a value to decide (an install's), else
 * the tie-break: a copy made before the value was known must never unbind a member.
 */
function boundFirst (a: Placement, b: Placement): Placement {
  if (samePlacement(a, b) && (a.mustDecide === undefined) !== (b.mustDecide === undefined)) return a.mustDecide !== undefined ? a : b
  return canonicalOrder(a, b) <= 0 ? a : b
}

/** The value a record's current epoch must decide for its current generation, if a move bound it to one. */
export function mustDecideOf (record: TaskRecord): FinalValue | undefined {
  const bound = record.placement.mustDecide
  return bound !== undefined && bound.generation === record.generation ? bound.value : undefined
}

function mergeAttempt (a: Attempt, b: Attempt): Attempt {
  const rank = OUTCOME_RANK[b.outcome] - OUTCOME_RANK[a.outcome]
  const winner = rank > 0 ? b : rank < 0 ? a : (canonicalOrder(a, b) <= 0 ? a : b)
  return { ...winner, startedAt: Math.min(a.startedAt, b.startedAt) }
}

/**
 * A merged copy's retry time was stamped by another member's clock: one running an hour ahead
 * would hold every member back an hour once copies merge (by a put, a read's repair or a move's
 * install). One past the longest back-off from this member's `now` is not taken: the retry time this
 * member holds for the generation stands (brought again and again, the copy moves it no later),
 * else the longest back-off from now.
 */
export function ownRetryTime (merged: TaskRecord, existing: TaskRecord | undefined, now: number, maxRetryDelayMs: number): TaskRecord {
  const limit = now + maxRetryDelayMs
  if (merged.notBefore === undefined || merged.notBefore <= limit || merged.notBefore === existing?.notBefore) return merged
  const own = existing?.generation === merged.generation ? existing.notBefore : undefined
  return { ...merged, notBefore: own ?? limit }
}

/** Commutative, associative and idempotent. */
export function mergeRecords (a: TaskRecord, b: TaskRecord): TaskRecord {
  // only a dead task is redriven to a new generation: a completed or canceled one is over for good,
  // and a copy naming a later generation (a peer's lie, or damage) must not wipe its certificate
  const over = [a.final, b.final].filter((f): f is FinalState => f !== undefined && f.state !== 'dead').map(f => f.generation)
  const generation = over.length > 0 ? Math.min(...over) : Math.max(a.generation, b.generation)
  const attempts = new Map<string, Attempt>()
  for (const attempt of [...a.attempts, ...b.attempts]) {
    const seen = attempts.get(attempt.claimId)
    attempts.set(attempt.claimId, seen === undefined ? attempt : mergeAttempt(seen, attempt))
  }
  // a final state is certified, and two certificates of one generation name one outcome, so no
  // ranking or clock is needed: the canonical tie-break only picks between equal copies
  const finals = [a.final, b.final].filter((f): f is FinalState => f !== undefined && f.generation === generation)
  // (a dead end, which a redrive may follow, after one that is over for good: two certificates of one
  // generation are never both made, but merging must stay associative even with them)
  finals.sort((x, y) => Number(x.state === 'dead') - Number(y.state === 'dead') || canonicalOrder(x, y))
  const placement = a.placement.epoch !== b.placement.epoch
    ? (a.placement.epoch > b.placement.epoch ? a.placement : b.placement)
    : boundFirst(a.placement, b.placement)
  const previous = mergePrevious(a.previous, b.previous, placement.epoch)
  const dropped = Math.max(a.droppedGeneration ?? -1, b.droppedGeneration ?? -1)
  // a task over waits for no retry (and a later generation's wait must not come back with it)
  const notBefore = over.length > 0 ? undefined : a.generation === b.generation ? Math.max(a.notBefore ?? 0, b.notBefore ?? 0) : (a.generation > b.generation ? a.notBefore : b.notBefore)
  const journal = mergeJournals(a.journal, b.journal)
  // the newer wait wins; an older one ended when the agent went on to the next
  const waiting = a.waiting === undefined ? b.waiting : b.waiting === undefined ? a.waiting : (a.waiting.since !== b.waiting.since ? (a.waiting.since > b.waiting.since ? a.waiting : b.waiting) : (canonicalOrder(a.waiting, b.waiting) <= 0 ? a.waiting : b.waiting))
  return {
    // two submits racing on one idempotency key share an id but not every field: pick one alike everywhere
    task: canonicalOrder(a.task, b.task) <= 0 ? a.task : b.task,
    placement,
    ...(previous === undefined ? {} : { previous }),
    generation,
    attempts: capAttempts([...attempts.values()].sort((x, y) => x.startedAt - y.startedAt || (x.claimId < y.claimId ? -1 : 1)), generation),
    ...(finals[0] === undefined ? {} : { final: finals[0] }),
    ...(dropped < 0 ? {} : { droppedGeneration: dropped }),
    ...(notBefore === undefined || notBefore === 0 ? {} : { notBefore }),
    ...(journal === undefined ? {} : { journal }),
    ...(waiting === undefined ? {} : { waiting }),
    updatedAt: Math.max(a.updatedAt, b.updatedAt)
  }
}

/**
 * The attempts, in their order, at most MAX_ATTEMPTS_KEPT of them. Past the bound the ones that
 * matter least go first: released partial claims, then attempts of older generations, oldest first.
 * The attempts of the current generation that count (failed or expired, at most maxAttempts, plus
 * running and completed ones) are kept. The order is total, so every copy drops the same ones.
 */
export function capAttempts (list: Attempt[], generation: number): Attempt[] {
  if (list.length <= MAX_ATTEMPTS_KEPT) return list
  const weight = (a: Attempt): number => a.outcome === 'released' ? 0 : a.generation !== generation ? 1 : 2
  const keep = new Set([...list].sort((x, y) => weight(y) - weight(x) || y.startedAt - x.startedAt || (x.claimId < y.claimId ? -1 : 1)).slice(0, MAX_ATTEMPTS_KEPT))
  return list.filter(a => keep.has(a))
}

/** Attempts of the current generation that really started (not released partial claims). */
export function currentAttempts (record: TaskRecord): Attempt[] {
  return record.attempts.filter(a => a.generation === record.generation && a.outcome !== 'released')
}

/** Attempts of the current generation that count against maxAttempts. */
export function failedAttempts (record: TaskRecord): number {
  return currentAttempts(record).filter(a => a.outcome === 'failed' || a.outcome === 'expired').length
}

/** Dead in its current generation and not dropped: listed in the dead letters, kept until dropped. */
export function isDeadLetter (record: TaskRecord): boolean {
  return record.final?.state === 'dead' && (record.droppedGeneration ?? -1) < record.generation
}

export function stateOf (record: TaskRecord, now = Date.now()): TaskState {
  if (record.final !== undefined) return record.final.state
  const attempts = currentAttempts(record)
  const last = attempts.at(-1)
  if (attempts.some(a => a.outcome === 'running')) return 'running'
  if (isWaiting(record, now)) return 'waiting'
  if (last !== undefined && (last.outcome === 'failed' || last.outcome === 'expired')) return 'failed'
  return 'pending'
}

/** The last attempt's own error in the current generation: why, where a certified reason says only "failed 3 of 3 attempts". */
export function lastErrorOf (record: TaskRecord): string | undefined {
  return [...record.attempts].reverse().find(a => a.generation === record.generation && a.error !== undefined)?.error
}

/** The peer currently running the task, if any: none once it is final. */
export function holderOf (record: TaskRecord): string | undefined {
  if (record.final !== undefined) return undefined
  return currentAttempts(record).find(a => a.outcome === 'running')?.peer
}

/**
 * How an attempt ended, as far as this copy can tell. A copy outside the placement learns a task's
 * end from its certificate, not the attempts that led to it: an attempt it last saw running is the
 * completed one if the certificate names its claim (only a completion names one), else one whose
 * lease ended.
 */
function shownOutcome (record: TaskRecord, a: Attempt): Attempt['outcome'] {
  const final = record.final
  if (a.outcome !== 'running' || final === undefined || a.generation !== final.generation) return a.outcome
  return a.claimId === final.claimId && final.state === 'completed' ? 'completed' : 'expired'
}

/** A small view for APIs: no input. */
export function summarize (record: TaskRecord): Record<string, unknown> {
  const attempts = currentAttempts(record)
  const completed = record.attempts.find(a => a.outcome === 'completed')
  return {
    id: record.task.id,
    capability: record.task.capability,
    state: stateOf(record),
    placement: record.placement,
    // a wait's suspended run spent no attempt: counted as maxAttempts counts
    attempts: attempts.filter(a => a.outcome !== 'suspended').length,
    maxAttempts: record.task.maxAttempts,
    generation: record.generation,
    holder: holderOf(record),
    // the certified winner; before that, the latest attempt's peer
    executor: record.final?.peer ?? completed?.peer ?? attempts.at(-1)?.peer,
    claimId: record.final?.claimId,
    submitter: record.task.submitter,
    parent: record.task.parent,
    createdAt: record.task.createdAt,
    deadline: record.task.deadline,
    updatedAt: record.updatedAt,
    finishedAt: record.final?.at,
    ...(isWaiting(record) && record.waiting !== undefined ? { waitingFor: { name: record.waiting.name, since: record.waiting.since, until: record.waiting.until } } : {}),
    error: record.final?.state === 'completed' ? undefined : (record.final?.reason ?? attempts.filter(a => a.error !== undefined).at(-1)?.error),
    // the certified claim shows no error: a copy that saw its lease lapse first kept "lease expired"
    history: record.attempts.filter(a => a.outcome !== 'released').map(a => {
      const outcome = shownOutcome(record, a)
      return { attempt: a.claimId, generation: a.generation, peer: a.peer, outcome, startedAt: a.startedAt, endedAt: a.endedAt, error: outcome === 'completed' ? undefined : a.error }
    })
  }
}
