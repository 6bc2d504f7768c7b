import { z } from 'zod'
import { MAX_WAIT_MS, MAX_WAIT_NAME, TaskSuspendedError, WaitTimeoutError } from '../../protocols/lease/index.js'
import { createHash } from 'node:crypto'
import { JSON_VALUE_WHAT, NOT_JSON, STEP_KEY_RULE, SUBTASK_PREFIX, byteLength, canonicalJson, cloneJson, isStepKey, resultCopy, signalKey } from '../../protocols/task/index.js'
import { SubtaskFailedError, UnrecoverableTaskError } from '../runtime/agent.js'
import { journalBytes, maxRecordBytes } from './options.js'
import type { TaskLayerOptions } from './options.js'
import type { TaskService } from './task-service.js'
import type { HeldLease } from '../../protocols/lease/index.js'
import type { Task } from '../../protocols/task/index.js'
import type { WaitOptions } from '../runtime/agent.js'

/** What an agent's durable operations read and count: the run's task, its lease, this node's copy. */
export interface DurableRun {
  task: Task
  lease: HeldLease
  /** the run's: aborted on a lost lease, a cancel and the task's timeout */
  signal: AbortSignal
  tasks: Pick<TaskService, 'find' | 'submit' | 'waitFor'>
  options: Pick<TaskLayerOptions, 'maxInputBytes' | 'defaultWaitMs' | 'subtaskResultWaitMs'>
  stats: { stepsRun: number, stepsReplayed: number }
  /** this run's subtask submits so far, by what they submit (see subtaskKey), and the bytes their ids added to the journal */
  subtasks: { submits: Map<string, number>, journaledBytes: number }
}

/**
 * A durable step (see AgentContext.step): replayed from the journal, else run and journaled on a
 * majority of the placement under this lease. A step that cannot be journaled fails the attempt:
 * going on would redo it after a takeover.
 */
export async function durableStep<T> (run: DurableRun, key: string, fn: () => Promise<T>): Promise<T> {
  // every attempt would be refused alike by the members
  if (!isStepKey(key)) throw new UnrecoverableTaskError(`ctx.step: ${STEP_KEY_RULE}, got ${JSON.stringify(String(key).slice(0, 40))}`)
  const current = (await run.tasks.find(run.task.id))?.record
  // its own key only: "toString" is no step the journal inherited
  if (current?.journal !== undefined && Object.hasOwn(current.journal, key)) {
    run.stats.stepsReplayed++
    // a copy: the agent may change what it gets, and the journal is this node's stored record
    return cloneJson(current.journal[key]) as T
  }
  // a run that was aborted (its lease lost, the task canceled or timed out) does no more steps:
  // another holder may be doing this one, and its side effects would happen twice
  run.signal.throwIfAborted()
  const value = await fn()
  // checked and copied as a result is: no retry makes it JSON (a BigInt failed each attempt with JSON.stringify's own words)
  const { stored, size: valueBytes } = resultCopy(value)
  if (stored === NOT_JSON) throw new UnrecoverableTaskError(`ctx.step "${key.slice(0, 40)}": its value is not ${JSON_VALUE_WHAT}`)
  const size = current === undefined ? 0 : journalBytes(current) + valueBytes + byteLength(key)
  if (size > maxRecordBytes(run.options)) throw new UnrecoverableTaskError(`ctx.step "${key.slice(0, 40)}": its value would grow the task's input and journal to ${size} bytes, past the ${maxRecordBytes(run.options)} a task may hold (maxInputBytes and 32 KiB)`)
  await run.lease.journal(key, stored)
  run.stats.stepsRun++
  return value
}

/**
 * A durable wait (see AgentContext.waitFor): the signal's data if it is in the journal; a
 * WaitTimeoutError if this very wait ran out; else the wait is recorded on a majority, the lease
 * given back, and the run ends (TaskSuspendedError) until a signal or the timeout.
 */
export async function durableWait<T> (run: DurableRun, name: string, options: WaitOptions<T> = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? run.options.defaultWaitMs
  if (name.length === 0 || name.length > MAX_WAIT_NAME || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_WAIT_MS) {
    throw new UnrecoverableTaskError(`ctx.waitFor: a name of 1-${MAX_WAIT_NAME} characters and a timeout of 1 to ${MAX_WAIT_MS} ms, got "${name.slice(0, 40)}" and ${timeoutMs}`)
  }
  run.signal.throwIfAborted()
  const record = (await run.tasks.find(run.task.id))?.record
  const kept = record?.journal?.[signalKey(name)] as { data?: unknown } | undefined
  if (kept !== undefined) {
    run.stats.stepsReplayed++
    if (options.schema === undefined) return cloneJson(kept.data) as T
    const parsed = options.schema.safeParse(cloneJson(kept.data))
    // a retry would read the same signal: the task ends here, saying why
    if (!parsed.success) throw new UnrecoverableTaskError(`signal "${name}" does not match the wait's schema: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
    return parsed.data
  }
  // this name's wait took (its attempt was suspended), and no signal came: a majority let the
  // task be claimed again, so its time ran out by their clocks, whatever this node's says
  const waited = record?.waiting
  if (waited?.name === name && record?.attempts.some(a => a.claimId === waited.claimId && a.outcome === 'suspended') === true && waited.claimId !== run.lease.claimId) {
    throw new WaitTimeoutError(`no signal "${name}" within ${timeoutMs} ms`)
  }
  // the schema of what the agent's zod schema takes (its input): an object that strips unknown keys takes them
  const schema = options.schema === undefined ? undefined : z.toJSONSchema(options.schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  await run.lease.suspend(name, timeoutMs, schema)
  throw new TaskSuspendedError(name)
}

/** One wait for a subtask, before it is asked again (a lost completion notice costs no more). */
const WAIT_SLICE_MS = 5_000

type SubtaskOptions = { idempotencyKey?: string, maxAttempts?: number, timeoutMs?: number }

/**
 * The journal key of a subtask: what it submits, and how many submits of the same this run made
 * before it. A run taken over after its holder died makes the same submits in the same order where
 * its agent does, whatever order other subtasks finish in.
 */
function subtaskKey (run: DurableRun, capability: string, input: unknown, options: SubtaskOptions): string {
  const what = createHash('sha256').update(canonicalJson({ capability, input, options })).digest('hex').slice(0, 32)
  const nth = run.subtasks.submits.get(what) ?? 0
  run.subtasks.submits.set(what, nth + 1)
  return `${SUBTASK_PREFIX}${what}:${nth}`
}

/**
 * The id of the subtask an earlier attempt of this run submitted for `key`, unless that subtask
 * ended other than completed (a retry of the parent tries its failed subtasks again) or cannot be
 * found.
 */
async function journaledSubtask (run: DurableRun, journal: Record<string, unknown> | undefined, key: string): Promise<string | undefined> {
  const kept = journal !== undefined && Object.hasOwn(journal, key) ? (journal[key] as { id?: unknown } | null)?.id : undefined
  if (typeof kept !== 'string') return undefined
  const found = await run.tasks.find(kept)
  if (found === undefined) return undefined
  const final = found.record.final
  return final === undefined || final.state === 'completed' ? kept : undefined
}

/**
 * A subtask (see AgentContext.submit): submitted with its parent named, its id journaled on a
 * majority of the parent's placement, and its result awaited. A holder that takes the parent over
 * waits for the subtask an earlier attempt submitted, where it ran it a second time.
 */
export async function subtask (run: DurableRun, signal: AbortSignal, capability: string, input: unknown, options: SubtaskOptions = {}, traceparent?: string): Promise<unknown> {
  // an aborted run starts no more work on the mesh
  signal.throwIfAborted()
  const key = subtaskKey(run, capability, input, options)
  const current = (await run.tasks.find(run.task.id))?.record
  let id = await journaledSubtask(run, current?.journal, key)
  if (id === undefined) {
    id = (await run.tasks.submit({ capability, input, parent: run.task.id, traceparent, ...options })).id
    const entry = { id }
    const added = byteLength(entry) + byteLength(key)
    // past what a record may hold the id is not kept (a wide fan-out): a takeover submits that one
    // again. Counted with the ids this run is journaling at the same time, which its read lacks
    if (current !== undefined && journalBytes(current) + run.subtasks.journaledBytes + added <= maxRecordBytes(run.options)) {
      run.subtasks.journaledBytes += added
      signal.throwIfAborted()
      await run.lease.journal(key, entry)
    }
  } else {
    run.stats.stepsReplayed++
  }
  /** since when the subtask is known completed without its result here */
  let missingSince: number | undefined
  while (true) {
    signal.throwIfAborted()
    const left = missingSince === undefined ? WAIT_SLICE_MS : run.options.subtaskResultWaitMs - (performance.now() - missingSince)
    if (left <= 0) throw new SubtaskFailedError(id, 'completed', `result unavailable from its replicas for ${run.options.subtaskResultWaitMs} ms`)
    // the signal ends the wait at once: an agent waiting here heeds its abort, as it is asked to;
    // a completed task's missing result is asked for again within the wait, more often at first
    const view = await run.tasks.waitFor(id, Math.min(WAIT_SLICE_MS, left), signal)
    const final = view.record.final
    if (final === undefined) continue
    if (final.state !== 'completed') throw new SubtaskFailedError(id, final.state, final.reason)
    if (view.result !== undefined) return cloneJson(view.result.value)
    // completed, but no replica answered with the result yet: ask again, for a bounded time
    missingSince ??= performance.now()
  }
}
