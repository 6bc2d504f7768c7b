import { z } from 'zod'
import { MAX_WAIT_MS, MAX_WAIT_NAME, TaskSuspendedError, WaitTimeoutError } from '../../protocols/lease/index.js'
import { JSON_VALUE_WHAT, NOT_JSON, STEP_KEY_RULE, byteLength, cloneJson, isStepKey, resultCopy, signalKey } from '../../protocols/task/index.js'
import { UnrecoverableTaskError } from '../runtime/agent.js'
import { entryCost } from './durable-subtask.js'
import { journalBytes, maxRecordBytes } from './options.js'
import type { TaskLayerOptions } from './options.js'
import type { SubtaskLedger } from './durable-subtask.js'
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
  stats: { stepsRun: number, stepsReplayed: number, subtasksReused: number, subtaskIdsUnkept: number }
  /** what the run's subtasks' ids in the journal need (node/tasks/durable-subtask.ts) */
  subtasks: SubtaskLedger
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
  // the subtasks it submits are counted within it: a later attempt that replays it submits none
  const grownBefore = run.subtasks.grown
  const value = await run.subtasks.inStep(key, fn)
  // checked and copied as a result is: no retry makes it JSON (a BigInt failed each attempt with JSON.stringify's own words)
  const { stored } = resultCopy(value)
  if (stored === NOT_JSON) throw new UnrecoverableTaskError(`ctx.step "${key.slice(0, 40)}": its value is not ${JSON_VALUE_WHAT}`)
  // with what the run journaled meanwhile (its subtasks' ids among it), which `current` lacks
  const cost = entryCost(key, stored, run.lease.grants)
  const size = current === undefined ? 0 : journalBytes(current) + run.subtasks.grown - grownBefore + cost
  if (size > maxRecordBytes(run.options)) throw new UnrecoverableTaskError(`ctx.step "${key.slice(0, 40)}": its value would grow the task's input and journal to ${size} bytes, past the ${maxRecordBytes(run.options)} a task may hold (maxInputBytes and 32 KiB)`)
  await run.lease.journal(key, stored)
  run.subtasks.grown += cost
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
  let record = (await run.tasks.find(run.task.id))?.record
  // a signal's second round (which writes it into the journal) may have reached fewer members than
  // a majority read meets: before calling this wait run out, every member is asked
  if (record?.journal?.[signalKey(name)] === undefined && record?.waiting?.name === name) record = (await run.tasks.find(run.task.id, { complete: true }))?.record ?? record
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
