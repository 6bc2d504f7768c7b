import { z } from 'zod'
import { MAX_TASK_TIMEOUT_MS, TASK_ID, TASK_STATES, capabilitySchema, jsonValue, lastErrorOf, membersOf, stateOf, summarize } from '../../protocols/task/index.js'
import { MAX_BULK_TASKS } from '../tasks/task-service.js'
import { TRACEPARENT } from '../tracing.js'
import { traceTask } from '../tasks/trace.js'
import { TaskNotFoundError } from '../tasks/errors.js'
import { isSettled } from '../tasks/find-task.js'
import { MAX_DEADLINE_MS } from '../tasks/options.js'
import { badRequest, httpErrorBy, parseOr400, zodMessage } from './http.js'
import { inputRefusal } from './input-check.js'
import type { ErrorTable, Route, RouteContext } from './http.js'
import type { TaskLayer } from '../tasks/task-layer.js'
import type { SubmitManyEntry, TaskView } from '../tasks/task-service.js'

/** The furthest deadline a submit may ask for: a year. */

const submitBody = z.object({
  capability: z.string(),
  input: jsonValue(),
  idempotencyKey: z.string().min(1).max(256).optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  timeoutMs: z.number().int().min(1).max(MAX_TASK_TIMEOUT_MS).optional(),
  // bounded so that now + deadlineMs stays a safe integer the replicas accept (unbounded, a huge
  // value passed this check and came back as a 503 from every replica)
  deadlineMs: z.number().int().min(1).max(MAX_DEADLINE_MS).optional(),
  /** refuse with 422 NO_CAPABLE_PEER instead of waiting when no live peer offers the capability */
  requirePeer: z.boolean().optional(),
  /** W3C trace context; the `traceparent` header works too (the field wins) */
  traceparent: z.string().regex(TRACEPARENT, '00-<32 hex>-<16 hex>-<2 hex> (W3C trace context)').optional()
}).strict()

/** The same, as the OpenAPI document shows it: the capability's form is checked later, with its own message */
const submitDoc = submitBody.extend({ capability: capabilitySchema })

/**
 * The body of a route that takes none (cancel, redrive, force-placement): nothing, `null` or `{}`. A field
 * there was ignored, so `{"maxAttempts": 5}` on a redrive seemed to raise the budget and did not.
 */
const noFields = z.object({}).strict()
async function takesNoFields (ctx: RouteContext): Promise<void> {
  const body = await ctx.body()
  // none, an empty one, null or {}
  if (body === undefined || body === null || noFields.safeParse(body).success) return
  const fields = typeof body === 'object' && !Array.isArray(body) ? Object.keys(body).slice(0, 10).map(k => JSON.stringify(k.slice(0, 100))) : undefined
  const given = fields === undefined ? 'a JSON value that is not {}' : `fields ${fields.join(', ')}`
  throw badRequest('invalid-body', `this route takes no body (or {}), got ${given}: the task keeps the options it was submitted with`)
}

const waitSchema = z.object({ wait: z.number().int().min(0).optional().describe('ms to wait for the result (long poll), at most the node\'s http.maxWaitMs (300000 by default)') })

const signalBody = z.object({
  name: z.string().min(1).max(200),
  data: jsonValue().optional()
}).strict()

/** `limit` of a listing: digits only (a coerced number took 0x10 and 1e3 too) */
const LIMIT_WHAT = 'a whole number from 1 to 10000'
const limitParam = z.string().regex(/^\d{1,5}$/, LIMIT_WHAT).transform(Number).pipe(z.number().int().min(1, LIMIT_WHAT).max(10_000, LIMIT_WHAT))

const deadLetterQuery = z.object({ limit: limitParam.optional() })

/** A listing's query as an object: an empty value is no filter, as on /v1/events (`?state=` was a 400, `?capability=` matched nothing). */
const filledQuery = (query: URLSearchParams): Record<string, string> => Object.fromEntries([...query].filter(([, v]) => v !== ''))

/** Dead letters a listing returns when it names no limit. */
const DEAD_LETTER_PAGE = 1_000

const listQuery = z.object({
  // blocked: a majority of the task's placement has been unreachable past placementMoveAfterMs
  state: z.enum([...TASK_STATES, 'blocked']).optional(),
  capability: capabilitySchema.optional(),
  parent: z.string().regex(TASK_ID, 'a task id: 64 lowercase hex digits').optional(),
  idPrefix: z.string().regex(/^[0-9a-f]{1,64}$/, 'lowercase hex digits').optional(),
  limit: limitParam.optional()
})

/** a task read or write that no majority of its placement answered, for the OpenAPI document */
const QUORUM = 'QUORUM_UNAVAILABLE: fewer than a majority of the task\'s placement answered (Retry-After)'

// a reason marks the client's fault; an unknown task or a conflict is an answer, not a bad request
const ERROR_STATUS: ErrorTable = {
  TaskNotFoundError: [404, 'NOT_FOUND'],
  InvalidTaskError: [400, 'BAD_REQUEST', 'invalid-task'],
  TaskTooLargeError: [413, 'PAYLOAD_TOO_LARGE', 'invalid-task'],
  NoCapablePeerError: [422, 'NO_CAPABLE_PEER'],
  IdempotencyConflictError: [422, 'IDEMPOTENCY_CONFLICT'],
  QuorumUnavailableError: [503, 'QUORUM_UNAVAILABLE'],
  OverloadedError: [429, 'OVERLOADED'],
  LeaseDeniedError: [409, 'CONFLICT'],
  PlacementBlockedError: [409, 'CONFLICT'],
  TaskFinishedError: [409, 'CONFLICT'],
  TaskNotWaitingError: [409, 'NOT_WAITING'],
  TaskPastDeadlineError: [409, 'PAST_DEADLINE'],
  InvalidSignalError: [400, 'BAD_REQUEST', 'invalid-body']
}

type Fail = (err: any) => never

/**
 * A `POST /v1/tasks` with an array body: one submit of many tasks. `202 {tasks: [...]}`, one entry
 * per task in request order: `{id, created, warning?}`, or `{error: {name, message}}` with the name
 * a lone submit of that task would have answered with (BAD_REQUEST, PAYLOAD_TOO_LARGE,
 * QUORUM_UNAVAILABLE). A bad task does not stop the others; an empty array or one over
 * MAX_BULK_TASKS is a 400 for the whole request.
 */
async function submitBulk (t: TaskLayer, body: unknown[], httpError: Fail, traceparent: string | undefined): Promise<{ status: number, body: unknown }> {
  if (body.length === 0) throw badRequest('invalid-body', 'an array of tasks needs at least one task')
  if (body.length > MAX_BULK_TASKS) throw badRequest('invalid-body', `at most ${MAX_BULK_TASKS} tasks in one request, got ${body.length}`)
  const live = t.presence.live()
  const parsed = body.map((item, i) => {
    const p = submitBody.safeParse(item)
    if (!p.success) return { error: zodMessage(p.error, `tasks[${i}]`) }
    const refused = inputRefusal(live, p.data.capability, p.data.input)
    return refused === undefined ? { data: p.data } : { error: `tasks[${i}]: ${invalidInput(p.data.capability, refused)}` }
  })
  // the request's traceparent header joins each task that names none, as for one task
  const valid = parsed.flatMap(p => p.data === undefined ? [] : [{ ...p.data, traceparent: p.data.traceparent ?? traceparent }])
  const submitted = valid.length === 0 ? [] : await t.service.submitMany(valid).catch(httpError)
  let next = 0
  const tasks = parsed.map((p, i) => {
    if (p.error !== undefined) return { error: { name: 'BAD_REQUEST', message: p.error } }
    const entry = submitted[next++] as SubmitManyEntry
    if (!('error' in entry)) return { id: entry.id, created: entry.created, ...(entry.warning === undefined ? {} : { warning: entry.warning }) }
    const mapped = ERROR_STATUS[entry.error.name]
    if (mapped === undefined) throw entry.error
    return { error: { name: mapped[1], message: `tasks[${i}]: ${entry.error.message}` }, ...(entry.id === undefined ? {} : { id: entry.id }) }
  })
  return { status: 202, body: { tasks } }
}

function invalidInput (capability: string, problem: string): string {
  return `invalid input for ${capability}: ${problem} (GET /v1/capabilities shows what it takes)`
}

/** A malformed traceparent header is ignored, as W3C trace context says: the task starts a trace of its own. */
function headerTraceparent (value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  return v !== undefined && TRACEPARENT.test(v.trim().toLowerCase()) ? v.trim().toLowerCase() : undefined
}

function taskIdParam (id: string | undefined): string {
  if (id === undefined || !TASK_ID.test(id)) throw badRequest('invalid-id', 'a task id is 64 lowercase hex digits')
  return id
}

export function viewBody (view: TaskView, progress?: unknown[]): Record<string, unknown> {
  return {
    ...summarize(view.record),
    // one task's page shows what it was asked (lists leave inputs out: up to 1 MiB each)
    input: view.record.task.input,
    // what the submit set, so a client can read back the limits its task runs under
    timeoutMs: view.record.task.timeoutMs,
    deadline: view.record.task.deadline,
    ...(view.record.task.idempotencyKey === undefined ? {} : { idempotencyKey: view.record.task.idempotencyKey }),
    ...(view.record.task.traceparent === undefined ? {} : { traceparent: view.record.task.traceparent }),
    ...(view.result === undefined ? {} : { result: view.result.value }),
    // the signed votes that made the final state, and the members of the placement they were cast in
    // (an earlier one when the task moved after): a client can check who certified it, and for what
    ...(view.record.final === undefined ? {} : { certificate: view.record.final.cert, certificateMembers: membersOf(view.record, view.record.final.cert.epoch) }),
    ...(progress === undefined ? {} : { progress }),
    ...(view.unconfirmed === true ? { unconfirmed: true } : {})
  }
}

/** `?wait=MS`: undefined when absent, 0 when empty; a 400 unless a whole number of milliseconds. */
function waitQuery (query: URLSearchParams): number | undefined {
  const raw = query.get('wait')
  if (raw === null) return undefined
  // digits only, as the OpenAPI document says (an integer): Number() took 1.5, 0x10 and 1e3 too;
  // any number of them, capped by maxWaitMs as any long wait is
  if (!/^\d*$/.test(raw)) throw badRequest('invalid-query', 'wait is a whole number of milliseconds, 0 or more')
  return Math.min(Number(raw), Number.MAX_SAFE_INTEGER)
}

/** A task's outcome after waiting up to `waitMs` (at most `maxWaitMs`): 200 once finished, 202 with its state before. */
async function resultAnswer (s: TaskLayer['service'], id: string, waitMs: number, maxWaitMs: number, httpError: Fail, gone?: AbortSignal): Promise<{ status: number, body: Record<string, unknown> }> {
  const view = await s.waitFor(id, Math.min(waitMs, maxWaitMs), gone).catch(httpError)
  const state = stateOf(view.record)
  // the certified reason ("failed 3 of 3 attempts") with the last attempt's own error, which says why
  const lastError = state === 'completed' ? undefined : lastErrorOf(view.record)
  const body = { id, state, ...(view.result === undefined ? {} : { result: view.result.value }), ...(view.record.final?.reason === undefined || state === 'completed' ? {} : { error: view.record.final.reason }), ...(lastError === undefined ? {} : { lastError }) }
  // completed, but its result has not reached this node yet (the wait ran out first): not done here,
  // so not a 200 without the result; the next poll brings it
  return { status: isSettled(view) ? 200 : 202, body }
}

export interface TaskRoutesInit {
  /** the longest ?wait= honoured. @default 300_000 */
  maxWaitMs?: number
}

/** /v1/tasks, /v1/capabilities, /v1/deadletter (/v1/metrics is in node-routes, with the API's own counters). */
export function taskRoutes (tasks: TaskLayer, init: TaskRoutesInit = {}): Route[] {
  const s = tasks.service
  const maxWaitMs = init.maxWaitMs ?? 300_000
  // the task layer's named errors as HTTP statuses; a 429 or 503 says when to come back
  const httpError = httpErrorBy(ERROR_STATUS, () => tasks.options.retryAfterMs)
  return [
    {
      method: 'POST',
      path: '/v1/tasks',
      summary: 'submit a task (202, or 200 for a known idempotency key), or an array of tasks (202, one entry each); one task with ?wait=MS answers as its result does',
      status: 202,
      otherStatuses: { 200: 'the task an idempotency key already names; with ?wait=MS, the finished task\'s result' },
      errorStatuses: {
        422: 'NO_CAPABLE_PEER (requirePeer and no live peer offers the capability), or IDEMPOTENCY_CONFLICT (the key names a task made with other options)',
        429: 'OVERLOADED: maxSubmitsInFlight submits are being stored already, or this node is a member of the placements of maxUnfinishedTasks unfinished tasks (Retry-After)',
        503: 'QUORUM_UNAVAILABLE: no majority of the placement stored it (Retry-After)'
      },
      // for the document: what the checks below take (a capability's form, 1 to MAX_BULK_TASKS tasks)
      schema: { body: z.union([submitDoc, z.array(submitDoc).min(1).max(MAX_BULK_TASKS)]), query: waitSchema },
      handle: async ctx => {
        const wait = waitQuery(ctx.query)
        const body = await ctx.body()
        if (Array.isArray(body)) {
          if (wait !== undefined) throw badRequest('invalid-query', 'wait is for one task: submit the array, then wait on each id')
          return submitBulk(tasks, body, httpError, headerTraceparent(ctx.req.headers.traceparent))
        }
        const one = parseOr400(submitBody, body)
        const refused = inputRefusal(tasks.presence.live(), one.capability, one.input)
        if (refused !== undefined) throw badRequest('invalid-task', invalidInput(one.capability, refused))
        const answer = await s.submit({ ...one, traceparent: one.traceparent ?? headerTraceparent(ctx.req.headers.traceparent) }).catch(httpError)
        const warning = answer.warning === undefined ? {} : { warning: answer.warning }
        if (wait === undefined) return { status: answer.created ? 202 : 200, body: { id: answer.id, ...warning } }
        // submit and long poll in one request: one HTTP exchange a task instead of two
        const done = await resultAnswer(s, answer.id, wait, maxWaitMs, httpError, ctx.gone()).catch(() => undefined)
        // the task exists: a wait that failed (a read that found nothing yet, a node stopping) still
        // gives the client its id to poll, or it would submit again
        if (done === undefined) return { status: 202, body: { id: answer.id, ...warning } }
        return { status: done.status, body: { ...done.body, ...warning } }
      }
    },
    {
      method: 'GET',
      path: '/v1/tasks',
      summary: 'tasks this node holds, filtered',
      schema: { query: listQuery },
      handle: async ctx => {
        const records = await s.list(parseOr400(listQuery, filledQuery(ctx.query), 'invalid-query'))
        return { body: { tasks: records.map(r => summarize(r)) } }
      }
    },
    {
      method: 'GET',
      path: '/v1/tasks/:id',
      summary: 'a task, from the majority of its placement',
      errorStatuses: { 503: QUORUM },
      handle: async ctx => {
        const id = taskIdParam(ctx.params.id)
        const view = await s.get(id).catch(httpError)
        // run here: the executor's own list; submitted here: what the executing peer sent this node
        const here = tasks.executor.progress.get(id)
        const sent = tasks.progress.recent(id).map(u => u.event)
        return { body: viewBody(view, here ?? (sent.length > 0 ? sent : undefined)) }
      }
    },
    {
      method: 'GET',
      path: '/v1/tasks/:id/trace',
      summary: 'a task and its subtasks from the records alone: each with its attempts, for a cross-peer timeline',
      handle: async ctx => {
        const id = taskIdParam(ctx.params.id)
        // the root's own read tells an unknown task (404): no separate read first
        const traced = await traceTask(tasks.components, s, id).catch(httpError)
        if (traced.length === 0) httpError(new TaskNotFoundError(id))
        const root = traced[0]?.record.task.traceparent
        return { body: { id, traceId: root?.split('-')[1], tasks: traced.map(t => ({ ...summarize(t.record), depth: t.depth, traceparent: t.record.task.traceparent, ...(t.record.final === undefined ? {} : { certifiedBy: t.record.final.cert.votes.map(v => v.peer) }) })) } }
      }
    },
    {
      method: 'GET',
      path: '/v1/tasks/:id/result',
      summary: 'the result (200), or 202 while unfinished; ?wait=MS long-polls',
      otherStatuses: { 202: 'the task unfinished: {id, state}' },
      errorStatuses: { 503: QUORUM },
      schema: { query: waitSchema },
      handle: async ctx => {
        const id = taskIdParam(ctx.params.id)
        const wait = waitQuery(ctx.query) ?? 0
        return resultAnswer(s, id, wait, maxWaitMs, httpError, wait > 0 ? ctx.gone() : undefined)
      }
    },
    {
      method: 'POST',
      path: '/v1/tasks/:id/cancel',
      summary: 'cancel a task',
      errorStatuses: { 409: 'CONFLICT: the task is finished, or its placement would not vote the cancel', 503: QUORUM },
      schema: { body: noFields, bodyOptional: true },
      handle: async ctx => {
        await takesNoFields(ctx)
        const view = await s.cancel(taskIdParam(ctx.params.id)).catch(httpError)
        return { body: { id: view.record.task.id, state: stateOf(view.record) } }
      }
    },
    {
      method: 'POST',
      path: '/v1/tasks/:id/signal',
      summary: 'deliver a signal {name, data} to a waiting task (ctx.waitFor): 200 once a majority of its placement keeps it, 409 when it does not wait for it',
      errorStatuses: { 409: 'NOT_WAITING: the task does not wait for this signal, or another value of it was delivered', 503: QUORUM },
      schema: { body: signalBody },
      handle: async ctx => {
        const id = taskIdParam(ctx.params.id)
        const body = parseOr400(signalBody, await ctx.body())
        const view = await s.signal(id, body.name, body.data ?? null).catch(httpError)
        return { body: { id, signal: body.name, state: stateOf(view.record) } }
      }
    },
    {
      method: 'POST',
      path: '/v1/tasks/:id/force-placement',
      summary: 'move a blocked task to a new placement (the operator takes the risk)',
      errorStatuses: { 409: 'CONFLICT: the task is not blocked, or is finished', 503: QUORUM },
      schema: { body: noFields, bodyOptional: true },
      handle: async ctx => {
        await takesNoFields(ctx)
        const answer = await s.forcePlacement(taskIdParam(ctx.params.id)).catch(httpError)
        return { body: answer }
      }
    },
    {
      method: 'GET',
      path: '/v1/capabilities',
      summary: 'live capabilities of the mesh and who offers them',
      handle: () => {
        const byName = new Map<string, { name: string, description?: string, inputSchema?: unknown, peers: Array<{ peerId: string, freeSlots: number }> }>()
        for (const peer of tasks.presence.live()) {
          for (const cap of peer.capabilities) {
            const entry = byName.get(cap.name) ?? { ...cap, peers: [] }
            entry.peers.push({ peerId: peer.peerId, freeSlots: peer.freeSlots[cap.name] ?? 0 })
            byName.set(cap.name, entry)
          }
        }
        return { body: { capabilities: [...byName.values()].sort((a, b) => a.name < b.name ? -1 : 1) } }
      }
    },
    {
      method: 'GET',
      path: '/v1/deadletter',
      summary: 'dead letters, newest first (?limit=, 1,000 by default)',
      schema: { query: deadLetterQuery },
      handle: async ctx => {
        const { limit } = parseOr400(deadLetterQuery, filledQuery(ctx.query), 'invalid-query')
        const records = await s.deadLetters(limit ?? DEAD_LETTER_PAGE)
        return { body: { deadLetters: records.map(r => ({ ...summarize(r), reason: r.final?.reason, lastError: lastErrorOf(r) })) } }
      }
    },
    {
      method: 'POST',
      path: '/v1/deadletter/:id/redrive',
      summary: 'run a dead task again',
      errorStatuses: { 409: 'CONFLICT: the task is not dead; PAST_DEADLINE: its deadline has passed', 503: QUORUM },
      schema: { body: noFields, bodyOptional: true },
      handle: async ctx => {
        await takesNoFields(ctx)
        const view = await s.redrive(taskIdParam(ctx.params.id)).catch(httpError)
        return { body: { id: view.record.task.id, state: stateOf(view.record), generation: view.record.generation } }
      }
    },
    {
      method: 'DELETE',
      path: '/v1/deadletter/:id',
      summary: 'drop a dead letter',
      handle: async ctx => {
        const id = taskIdParam(ctx.params.id)
        await s.drop(id).catch(httpError)
        return { body: { id, dropped: true } }
      }
    }
  ]
}
