import { createHash } from 'node:crypto'
import { z } from 'zod'
import { NOT_JSON, copyJson, jsonValue } from './json-value.js'
import { canonicalJson } from './canonical.js'
import { randomHex } from './random-hex.js'

export const CAPABILITY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
export const TASK_ID = /^[0-9a-f]{64}$/
export const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,100}$/

export const capabilitySchema = z.string().regex(CAPABILITY, 'capability: letters, digits, . _ - (up to 64)')
export const taskIdSchema = z.string().regex(TASK_ID, 'task id: 64 hex digits')
export const peerIdSchema = z.string().regex(PEER_ID, 'peer id')

/** setTimeout fires at once for a delay over 2^31 - 1 ms (24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647

/** the longest a task's attempt may run: 7 days */
export const MAX_TASK_TIMEOUT_MS = 7 * 24 * 3600_000

/** A task as submitted: immutable once made, the same on every peer. */
export const taskSchema = z.object({
  id: taskIdSchema,
  capability: capabilitySchema,
  input: jsonValue(),
  submitter: peerIdSchema,
  createdAt: z.number().int().nonnegative(),
  maxAttempts: z.number().int().min(1).max(100),
  timeoutMs: z.number().int().min(1).max(MAX_TASK_TIMEOUT_MS),
  deadline: z.number().int().nonnegative(),
  parent: taskIdSchema.optional(),
  idempotencyKey: z.string().min(1).max(256).optional(),
  nonce: z.string().max(64).optional(),
  /** W3C trace context of the submit span: every peer's spans of this task join its trace */
  traceparent: z.string().regex(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/).optional()
}).strict()

export type Task = z.infer<typeof taskSchema>

export interface TaskIdFields {
  capability: string
  input: unknown
  submitter: string
  idempotencyKey?: string
  nonce?: string
}

/**
 * The id is a hash of the canonical content: the same idempotency key from the same submitter
 * gives the same id; without a key a random nonce makes every submit new.
 */
export function taskId (fields: TaskIdFields): string {
  const key = fields.idempotencyKey === undefined ? { nonce: fields.nonce ?? '' } : { idempotencyKey: fields.idempotencyKey }
  return createHash('sha256').update(canonicalJson({ capability: fields.capability, input: fields.input, submitter: fields.submitter, ...key })).digest('hex')
}

export interface NewTask {
  capability: string
  input: unknown
  submitter: string
  idempotencyKey?: string
  maxAttempts: number
  timeoutMs: number
  /** absolute ms since the epoch */
  deadline: number
  parent?: string
  traceparent?: string
  now?: number
}

export function makeTask (t: NewTask): Task {
  const nonce = t.idempotencyKey === undefined ? randomHex(12) : undefined
  const input = t.input as Task['input']
  return {
    id: taskId({ ...t, nonce }),
    capability: t.capability,
    input,
    submitter: t.submitter,
    createdAt: t.now ?? Date.now(),
    maxAttempts: t.maxAttempts,
    timeoutMs: t.timeoutMs,
    deadline: t.deadline,
    ...(t.parent === undefined ? {} : { parent: t.parent }),
    ...(t.idempotencyKey === undefined ? {} : { idempotencyKey: t.idempotencyKey }),
    ...(nonce === undefined ? {} : { nonce }),
    ...(t.traceparent === undefined ? {} : { traceparent: t.traceparent })
  }
}

/**
 * A task made as makeTask makes it, with up to `tries` random nonces tried for an id that `accept`s
 * (the first nonce's when none does). The hash of the canonical content before the nonce is taken
 * once: each further try hashes the nonce and the few bytes after it, whatever the input's size. A
 * task with an idempotency key has one id, made as is.
 */
export function makeTaskWhere (t: NewTask, accept: (id: string) => boolean, tries: number): Task {
  const first = makeTask(t)
  if (first.nonce === undefined || tries <= 1 || accept(first.id)) return first
  const canonical = canonicalJson({ capability: t.capability, input: t.input, submitter: t.submitter, nonce: first.nonce })
  // the last match is the nonce field: the input comes before it, and the submitter after it is one
  // JSON string, inside which this quoted sequence cannot appear
  const at = canonical.lastIndexOf(`"nonce":"${first.nonce}"`) + '"nonce":"'.length
  const before = createHash('sha256').update(canonical.slice(0, at))
  const after = canonical.slice(at + first.nonce.length)
  const nonces = randomHex(12 * (tries - 1))
  for (let i = 0; i < tries - 1; i++) {
    const nonce = nonces.slice(24 * i, 24 * (i + 1))
    const id = before.copy().update(nonce + after).digest('hex')
    if (accept(id)) return { ...first, id, nonce }
  }
  return first
}

/** A task whose id does not match its content was forged or corrupted. */
export function hasValidId (task: Task): boolean {
  return taskId(task) === task.id
}

export function byteLength (value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '')
}

/**
 * What an agent returned, as it is kept and sent: a JSON copy (the agent may still change what it
 * returned; undefined is null) and its size, or NOT_JSON with size 0.
 */
export function resultCopy (value: unknown): { stored: unknown, size: number } {
  const stored = copyJson(value === undefined ? null : value)
  return { stored, size: stored === NOT_JSON ? 0 : byteLength(stored) }
}
