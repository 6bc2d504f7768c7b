import { makeTask, newRecord, taskId } from '../../protocols/task/index.js'
import { startSpan, traceparentOf } from '../tracing.js'
import { InvalidTaskError } from './errors.js'
import { mayBeUnstored, storeManyOnPlacements } from './placement-writes.js'
import { checkSubmit, keyConflict, offeredNames, submitNow } from './submit-checks.js'
import { unofferedField } from './suggest.js'
import { MAX_BULK_TASKS } from './bulk-limits.js'
import type { Placement, Task, TaskRecord } from '../../protocols/task/index.js'
import type { TaskComponents } from './components.js'
import { madeTask } from './find-task.js'
import type { TaskView } from './find-task.js'
import type { Creation, KeyCreations } from './key-creations.js'
import type { SubmitRequest } from './submit-checks.js'
import type { SubmitManyEntry } from './task-service.js'

/** Idempotency keys looked up at once by a bulk submit. */
const BULK_LOOKUPS = 8

/** What a bulk submit uses of the task service. */
export interface BulkHost {
  c: TaskComponents
  keys: KeyCreations
  stats: { submitted: number }
  find: (id: string) => Promise<TaskView | undefined>
  /** throws OverloadedError past maxUnfinishedTasks */
  admit: (reqs: SubmitRequest[]) => void
  /** a stored task goes to a peer that runs it */
  announce: (task: Task, placement: Placement) => void
  /** keeps a task's first progress events for a listener to come */
  track: (id: string) => void
}

/*
 * Submits many tasks with one `put-many` request per placement member (per chunk of about
 * BULK_CHUNK_BYTES), not one request per task and member: see TaskService.submitMany.
 */
export async function submitMany (host: BulkHost, reqs: SubmitRequest[]): Promise<SubmitManyEntry[]> {
  if (reqs.length === 0) throw new InvalidTaskError('a bulk submit needs at least one task')
  if (reqs.length > MAX_BULK_TASKS) throw new InvalidTaskError(`a bulk submit takes at most ${MAX_BULK_TASKS} tasks, got ${reqs.length}`)
  const submitter = host.c.peerId.toString()
  const out: Array<SubmitManyEntry | undefined> = new Array(reqs.length)
  const checked: Array<{ maxAttempts: number, timeoutMs: number } | undefined> = reqs.map((req, i) => {
    try {
      return checkSubmit(host.c, req)
    } catch (err: any) {
      if (err.name !== 'InvalidTaskError' && err.name !== 'TaskTooLargeError' && err.name !== 'NoCapablePeerError') throw err
      out[i] = { error: err }
      return undefined
    }
  })
  // tasks of an idempotency key that exist already answer as `submit` would: not created
  // hashed once per keyed request: the id is SHA-256 over the whole input
  const keyIds = reqs.map((req, i) => checked[i] !== undefined && req.idempotencyKey !== undefined ? taskId({ capability: req.capability, input: req.input, submitter, idempotencyKey: req.idempotencyKey }) : undefined)
  const keyed = new Set(keyIds.filter((id): id is string => id !== undefined))
  // a key being created here by another submit waits for it; the others this bulk creates
  const contested = new Set<string>()
  const owned = new Map<string, Creation>()
  for (const id of keyed) {
    if (host.keys.earlier(id) !== undefined) contested.add(id)
    else owned.set(id, host.keys.own(id))
  }
  try {
    return await createMany(host, reqs, out, checked, keyIds, contested, owned)
  } catch (err) {
    for (const creation of owned.values()) creation.fail(err)
    throw err
  }
}

async function createMany (host: BulkHost, reqs: SubmitRequest[], out: Array<SubmitManyEntry | undefined>, checked: Array<{ maxAttempts: number, timeoutMs: number } | undefined>, keyIds: Array<string | undefined>, contested: Set<string>, owned: Map<string, Creation>): Promise<SubmitManyEntry[]> {
  const o = host.c.options
  const submitter = host.c.peerId.toString()
  const existing = new Set<string>()
  // a creation of a key under way here answers it; one that fails leaves the key to this bulk (or a later waiter)
  /** tasks found by their keys: a request naming one with other options is refused (keyConflict) */
  const known = new Map<string, Task>()
  /** the warnings of keys another submit here was creating, as that submit answered */
  const answered = new Map<string, string>()
  for (const id of contested) {
    const claim = await host.keys.claim(id)
    if ('answer' in claim) {
      existing.add(id)
      if (claim.answer.warning !== undefined) answered.set(id, claim.answer.warning)
      const made = await madeTask(host.c, id)
      if (made !== undefined) known.set(id, made)
    } else owned.set(id, claim.owned)
  }
  const ids = [...owned.keys()]
  // found unfinished is not acknowledged (see TaskService.confirmStored): stored again with the new ones
  const refound = new Map<string, TaskRecord>()
  /** found and not final: a retry is warned as the first submit was when nobody offers its capability */
  const unfinished = new Set<string>()
  await Promise.all(Array.from({ length: Math.min(BULK_LOOKUPS, ids.length) }, async () => {
    for (let id = ids.pop(); id !== undefined; id = ids.pop()) {
      const view = await host.find(id)
      if (view === undefined) continue
      existing.add(id)
      known.set(id, view.record.task)
      if (view.record.final === undefined) unfinished.add(id)
      if (mayBeUnstored(view.record)) refound.set(id, view.record)
    }
  }))
  host.admit(reqs.filter((req, i) => checked[i] !== undefined && !existing.has(keyIds[i] as string)))
  const now = submitNow(host.c)
  const fresh = new Map<string, TaskRecord>()
  /** for each request, the task it made or names (a key repeated in the batch names the first) */
  const named: Array<{ id: string, first: boolean } | undefined> = reqs.map((req, i) => {
    const c = checked[i]
    if (c === undefined) return undefined
    const id = keyIds[i]
    if (id !== undefined && (existing.has(id) || fresh.has(id))) return { id, first: false }
    // one span for the bulk's store round: each task still gets its own trace context
    const span = startSpan('agentmesh.submit', req.traceparent, { 'agentmesh.capability': req.capability, 'agentmesh.bulk': true })
    const task = makeTask({ capability: req.capability, input: req.input, submitter, idempotencyKey: req.idempotencyKey, maxAttempts: c.maxAttempts, timeoutMs: c.timeoutMs, deadline: now + (req.deadlineMs ?? o.defaultDeadlineMs), parent: req.parent, traceparent: traceparentOf(span), now })
    span.setAttribute('agentmesh.task', task.id)
    span.end()
    fresh.set(task.id, newRecord(task, host.c.membership.choose(task.id), now))
    return { id: task.id, first: true }
  })
  const failed = await storeManyOnPlacements(host.c, [...fresh.values(), ...refound.values()])
  for (const [id, creation] of owned) {
    const error = failed.get(id)
    if (error !== undefined) creation.fail(error)
    else creation.settle({ id, created: !existing.has(id) })
  }
  const offered = offeredNames(host.c)
  const acked = [...fresh.values()].filter(r => !failed.has(r.task.id))
  host.stats.submitted += acked.length
  // kept before the first offer goes out: an event may come back before the loop ends
  for (const r of acked) host.track(r.task.id)
  // at once, not one after another: announcements are hints in no particular order
  for (const r of acked) host.announce(r.task, r.placement)
  for (const r of refound.values()) if (!failed.has(r.task.id) && r.attempts.length === 0) host.announce(r.task, r.placement)
  return reqs.map((req, i) => {
    const n = named[i]
    if (n === undefined) return out[i] as SubmitManyEntry
    const error = failed.get(n.id)
    // its id: a member that stored it may still run it, and the client can then follow or cancel it
    if (error !== undefined) return { error, id: n.id }
    if (!n.first) {
      const task = known.get(n.id) ?? fresh.get(n.id)?.task
      const conflict = task === undefined ? undefined : keyConflict(req, task)
      if (conflict !== undefined) return { error: conflict }
      const warning = answered.get(n.id)
      if (warning !== undefined) return { id: n.id, created: false, warning }
      return { id: n.id, created: false, ...(unfinished.has(n.id) || fresh.has(n.id) ? unofferedField(req.capability, offered) : {}) }
    }
    host.c.events.safeDispatchEvent('submitted', { detail: { id: n.id, capability: req.capability } })
    return { id: n.id, created: true, ...unofferedField(req.capability, offered) }
  })
}
