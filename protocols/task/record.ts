import { z } from 'zod'
import { canonicalJson } from './canonical.js'
import { peerIdSchema, taskSchema } from './schema.js'

export const TASK_STATES = ['pending', 'running', 'completed', 'failed', 'canceled', 'dead'] as const
export type TaskState = typeof TASK_STATES[number]

const attemptSchema = z.object({
  /** chosen by the claimant; the same on every replica, unlike the per-replica terms */
  claimId: z.string().min(1).max(64),
  generation: z.number().int().nonnegative(),
  peer: peerIdSchema,
  startedAt: z.number(),
  endedAt: z.number().optional(),
  /** released: granted on too few replicas, given back before running; does not count */
  outcome: z.enum(['running', 'released', 'completed', 'failed', 'expired']),
  error: z.string().max(4096).optional()
}).strict()

const finalSchema = z.object({
  state: z.enum(['completed', 'canceled', 'dead']),
  at: z.number(),
  generation: z.number().int().nonnegative(),
  reason: z.string().max(4096).optional(),
  peer: peerIdSchema.optional(),
  claimId: z.string().max(64).optional(),
  resultSize: z.number().int().nonnegative().optional()
}).strict()

/**
 * What a peer knows of a task. Records merge (see mergeRecords) in any order and any number of
 * times to the same value, so anti-entropy, notices and fetches can all feed one copy.
 */
export const taskRecordSchema = z.object({
  task: taskSchema,
  /** bumped by each redrive from the dead-letter list: a new attempt budget */
  generation: z.number().int().nonnegative(),
  attempts: z.array(attemptSchema).max(1000),
  final: finalSchema.optional(),
  /** the generation whose dead-letter entry was dropped */
  droppedGeneration: z.number().int().optional(),
  /** earliest time the next attempt may start (retry backoff) */
  notBefore: z.number().optional(),
  /**
   * Durable steps of the agent (model calls, tool results) by key: a peer that takes the task over
   * replays them instead of doing them again.
   */
  journal: z.record(z.string().max(256), z.json()).optional(),
  updatedAt: z.number()
}).strict()

export type Attempt = z.infer<typeof attemptSchema>
export type FinalState = z.infer<typeof finalSchema>
export type TaskRecord = z.infer<typeof taskRecordSchema>

export function newRecord (task: TaskRecord['task'], now = Date.now()): TaskRecord {
  return { task, generation: 0, attempts: [], updatedAt: now }
}

const OUTCOME_RANK: Record<Attempt['outcome'], number> = { running: 0, released: 1, expired: 2, failed: 3, completed: 4 }
const FINAL_RANK: Record<FinalState['state'], number> = { dead: 0, canceled: 1, completed: 2 }

/** A total order on otherwise equal candidates, so that merging never depends on argument order. */
function tieBreak<T> (a: T, b: T): number {
  const x = canonicalJson(a)
  const y = canonicalJson(b)
  return x < y ? -1 : x > y ? 1 : 0
}

function mergeAttempt (a: Attempt, b: Attempt): Attempt {
  const rank = OUTCOME_RANK[b.outcome] - OUTCOME_RANK[a.outcome]
  const winner = rank > 0 ? b : rank < 0 ? a : (tieBreak(a, b) <= 0 ? a : b)
  return { ...winner, startedAt: Math.min(a.startedAt, b.startedAt) }
}

/** Commutative, associative and idempotent. */
export function mergeRecords (a: TaskRecord, b: TaskRecord): TaskRecord {
  const generation = Math.max(a.generation, b.generation)
  const attempts = new Map<string, Attempt>()
  for (const attempt of [...a.attempts, ...b.attempts]) {
    const seen = attempts.get(attempt.claimId)
    attempts.set(attempt.claimId, seen === undefined ? attempt : mergeAttempt(seen, attempt))
  }
  const finals = [a.final, b.final].filter((f): f is FinalState => f !== undefined && (f.state !== 'dead' || f.generation === generation))
  finals.sort((x, y) => FINAL_RANK[y.state] - FINAL_RANK[x.state] || x.at - y.at || tieBreak(x, y))
  const dropped = Math.max(a.droppedGeneration ?? -1, b.droppedGeneration ?? -1)
  const notBefore = a.generation === b.generation ? Math.max(a.notBefore ?? 0, b.notBefore ?? 0) : (a.generation > b.generation ? a.notBefore : b.notBefore)
  const journal = mergeJournals(a.journal, b.journal)
  return {
    task: a.task,
    generation,
    attempts: [...attempts.values()].sort((x, y) => x.startedAt - y.startedAt || (x.claimId < y.claimId ? -1 : 1)),
    ...(finals[0] === undefined ? {} : { final: finals[0] }),
    ...(dropped < 0 ? {} : { droppedGeneration: dropped }),
    ...(notBefore === undefined || notBefore === 0 ? {} : { notBefore }),
    ...(journal === undefined ? {} : { journal }),
    updatedAt: Math.max(a.updatedAt, b.updatedAt)
  }
}

/** Union by key; two different values for one key (two holders raced) resolve the same way everywhere. */
function mergeJournals (a?: TaskRecord['journal'], b?: TaskRecord['journal']): TaskRecord['journal'] {
  if (a === undefined) return b
  if (b === undefined) return a
  const out: NonNullable<TaskRecord['journal']> = { ...a }
  for (const [key, value] of Object.entries(b)) {
    const mine = out[key]
    out[key] = mine === undefined || tieBreak(value, mine) < 0 ? value : mine
  }
  return Object.fromEntries(Object.entries(out).sort(([x], [y]) => x < y ? -1 : 1))
}

/** Attempts of the current generation that really started (not released partial claims). */
export function currentAttempts (record: TaskRecord): Attempt[] {
  return record.attempts.filter(a => a.generation === record.generation && a.outcome !== 'released')
}

/** Attempts of the current generation that count against maxAttempts. */
export function failedAttempts (record: TaskRecord): number {
  return currentAttempts(record).filter(a => a.outcome === 'failed' || a.outcome === 'expired').length
}

export function stateOf (record: TaskRecord): TaskState {
  if (record.final !== undefined) return record.final.state
  const attempts = currentAttempts(record)
  const last = attempts.at(-1)
  if (attempts.some(a => a.outcome === 'running')) return 'running'
  if (last !== undefined && (last.outcome === 'failed' || last.outcome === 'expired')) return 'failed'
  return 'pending'
}

/** The peer currently running the task, if any. */
export function holderOf (record: TaskRecord): string | undefined {
  return currentAttempts(record).find(a => a.outcome === 'running')?.peer
}

/** A small view for APIs: no input. */
export function summarize (record: TaskRecord): Record<string, unknown> {
  const attempts = currentAttempts(record)
  const completed = record.attempts.find(a => a.outcome === 'completed')
  return {
    id: record.task.id,
    capability: record.task.capability,
    state: stateOf(record),
    attempts: attempts.length,
    maxAttempts: record.task.maxAttempts,
    generation: record.generation,
    holder: holderOf(record),
    executor: completed?.peer ?? attempts.at(-1)?.peer,
    submitter: record.task.submitter,
    parent: record.task.parent,
    createdAt: record.task.createdAt,
    deadline: record.task.deadline,
    updatedAt: record.updatedAt,
    finishedAt: record.final?.at,
    error: record.final?.state === 'completed' ? undefined : (record.final?.reason ?? attempts.filter(a => a.error !== undefined).at(-1)?.error),
    history: record.attempts.filter(a => a.outcome !== 'released').map(a => ({ attempt: a.claimId, generation: a.generation, peer: a.peer, outcome: a.outcome, startedAt: a.startedAt, endedAt: a.endedAt, error: a.error }))
  }
}
