import { JSON_VALUE_WHAT, MAX_TASK_TIMEOUT_MS, byteLength, capabilitySchema, isJsonValue } from '../../protocols/task/index.js'
import { IdempotencyConflictError, InvalidTaskError, NoCapablePeerError, TaskTooLargeError } from './errors.js'
import { CHAT_CAPABILITY, chatCapability } from '../../protocols/openai/models.js'
import { closestNames, unofferedField } from './suggest.js'
import type { TaskComponents } from './components.js'
import type { Task } from '../../protocols/task/index.js'

/** A submit as the API, the CLI and agents' subtasks ask for it. */
export interface SubmitRequest {
  capability: string
  input: unknown
  idempotencyKey?: string
  maxAttempts?: number
  timeoutMs?: number
  /** ms after submit when the task goes dead if not finished */
  deadlineMs?: number
  parent?: string
  /** W3C trace context of the caller: the task's spans become its children */
  traceparent?: string
  /** refuse (NoCapablePeerError) rather than wait when no live peer offers the capability */
  requirePeer?: boolean
  /**
   * Called with a new task's id once it is made, before it is stored anywhere (not for a task an
   * idempotency key names that exists): a run journals its subtask's id first, so a holder that
   * takes the run over finds every subtask that may run. A throw fails the submit.
   */
  made?: (id: string) => Promise<void>
}

/** The checks of a submit, before any task is made; answers the attempts and timeout it gets. */
export function checkSubmit (c: TaskComponents, req: SubmitRequest): { maxAttempts: number, timeoutMs: number } {
  const o = c.options
  if (!capabilitySchema.safeParse(req.capability).success) {
    // quoted in part: the name is the caller's, of any length
    const name = String(req.capability)
    throw new InvalidTaskError(`invalid capability "${name.length > 80 ? `${name.slice(0, 80)}…" (${name.length} characters)` : `${name}"`}: a capability is 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`)
  }
  if (req.input === undefined) throw new InvalidTaskError('input is required (any JSON value)')
  const notJson = (): InvalidTaskError => new InvalidTaskError(`input is not ${JSON_VALUE_WHAT}`)
  let size: number
  try {
    size = byteLength(req.input)
  } catch {
    // a cycle, or a BigInt
    throw notJson()
  }
  if (size > o.maxInputBytes) throw new TaskTooLargeError(`input of ${size} bytes exceeds the limit of ${o.maxInputBytes}`)
  // every door checks its own shape, not always the values inside it (an OpenAI message's extra
  // fields): a value the members' schema refuses would come back as a failed majority, a 503
  if (!isJsonValue(req.input, { undefinedMembers: true })) throw notJson()
  const maxAttempts = req.maxAttempts ?? o.defaultMaxAttempts
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) throw new InvalidTaskError('maxAttempts must be a whole number from 1 to 100')
  const timeoutMs = req.timeoutMs ?? o.defaultTimeoutMs
  // the members' schema refuses more: without this check it came back as a failed majority, a 503
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TASK_TIMEOUT_MS) throw new InvalidTaskError(`timeoutMs must be a whole number from 1 to ${MAX_TASK_TIMEOUT_MS} (7 days)`)
  const offered = req.requirePeer === true ? offeredNames(c) : undefined
  if (offered !== undefined && !offered.has(req.capability)) {
    const close = closestNames(req.capability, offered)
    throw new NoCapablePeerError(`no live peer offers ${req.capability}${close.length === 0 ? '' : ` (did you mean ${close.join(' or ')}?)`}; not submitted (requirePeer)`)
  }
  return { maxAttempts, timeoutMs }
}

/**
 * A submit that names `task` by its idempotency key (same capability, input and key) but asks for
 * options it was not made with: the first submit's task stands, so the retry is refused rather than
 * answered with a task other than it asked for. Options the retry leaves out are not compared (a
 * default may have changed since), nor is its trace context.
 */
export function keyConflict (req: SubmitRequest, task: Task): IdempotencyConflictError | undefined {
  const differ: string[] = []
  if (req.maxAttempts !== undefined && req.maxAttempts !== task.maxAttempts) differ.push(`maxAttempts ${task.maxAttempts} (asked ${req.maxAttempts})`)
  if (req.timeoutMs !== undefined && req.timeoutMs !== task.timeoutMs) differ.push(`timeoutMs ${task.timeoutMs} (asked ${req.timeoutMs})`)
  if (req.deadlineMs !== undefined && req.deadlineMs !== task.deadline - task.createdAt) differ.push(`deadlineMs ${task.deadline - task.createdAt} (asked ${req.deadlineMs})`)
  if (req.parent !== undefined && req.parent !== task.parent) differ.push(`parent ${task.parent ?? 'none'} (asked ${req.parent})`)
  if (differ.length === 0) return undefined
  return new IdempotencyConflictError(`idempotency key ${JSON.stringify(req.idempotencyKey)} names task ${task.id}, made with ${differ.join(', ')}: use a new key for other options`)
}

/**
 * `llm.chat` with a `model` in its input goes to that model's own capability (`llm.chat.<model>`)
 * when a live peer offers it: as `llm.chat`, any chat peer took it and sent the model's name to its
 * own endpoint, which may not serve it. A model no live peer names stays on `llm.chat` (an endpoint
 * can serve models its node does not list).
 */
export function routedByModel<R extends { capability: string, input?: unknown }> (c: Pick<TaskComponents, 'presence'>, req: R, offered: () => Set<string> = () => offeredNames(c)): R {
  if (req.capability !== CHAT_CAPABILITY) return req
  const model = (req.input as { model?: unknown } | null | undefined)?.model
  if (typeof model !== 'string') return req
  const capability = chatCapability(model)
  return offered().has(capability) ? { ...req, capability } : req
}

/**
 * A single submit's `warning` when no live peer offers `capability`. This runs on every submit: the
 * offered names, for the suggestion, are gathered only when there is a warning to make.
 */
export function unofferedWarningOf (c: Pick<TaskComponents, 'presence'>, capability: string): { warning?: string } {
  const offered = c.presence.live().some(p => p.capabilities.some(cap => cap.name === capability))
  return offered ? {} : unofferedField(capability, offeredNames(c))
}

/** Capabilities some live peer (this node included) offers now. */
export function offeredNames (c: Pick<TaskComponents, 'presence'>): Set<string> {
  return new Set(c.presence.live().flatMap(p => p.capabilities.map(cap => cap.name)))
}

/**
 * The time a submit stamps its task with: the mesh's clock when this node's differs from it by more
 * than clockSkewToleranceMs (members judge a deadline by their own clocks); within it, the later of
 * the two. A node behind within the tolerance stamped deadlines that members, ahead, read as nearer
 * by the skew: 25 s behind, a 20 s deadline had passed for every member, and the task, told 202,
 * went dead unclaimed. One ahead stamps by its own: its tasks live their skew longer, never less.
 */
export function submitNow (c: TaskComponents): number {
  const offset = c.presence.clockOffset()
  return Date.now() + (Math.abs(offset) > c.options.clockSkewToleranceMs ? offset : Math.max(0, offset))
}
