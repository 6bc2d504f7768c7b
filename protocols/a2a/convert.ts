import { Role, TaskState } from '@a2a-js/sdk'
import { RequestMalformedError, UnsupportedOperationError } from '@a2a-js/sdk/errors'
import { currentAttempts, holderOf, stateOf } from '../task/index.js'
import { AGENT_CAPABILITY, JSON_MODE, KEY_PREFIX, MAX_ID_CHARS, MESH_META_KEY, SKILL_KEY, TEXT_MODE } from './constants.js'
import type { StoredResult, TaskRecord } from '../task/index.js'
import type { Artifact, Message, Part, Task } from '@a2a-js/sdk'

/** A task as the node knows it: the record and, once completed and known here, its result. */
export interface MeshTaskView {
  record: TaskRecord
  result?: StoredResult
}

/** What a message asks the mesh to run. */
export interface MeshRequest {
  capability: string
  input: unknown
}

const TERMINAL = new Set([TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED, TaskState.TASK_STATE_REJECTED])

export function isTerminal (state: TaskState | undefined): boolean {
  return state !== undefined && TERMINAL.has(state)
}

/**
 * The capability and input a message names: `metadata.skill` (on the message, else on the
 * request) with the message's data part as input, or its text when it has no data part. A message
 * that names no skill goes to the `agent` capability, as a prompt, when the mesh offers it.
 * `skills`: each live skill's input modes, as the agent card lists them. A part the named skill
 * does not take is refused here, before a task is made that could only fail.
 */
export function meshRequestOf (message: Message, requestMeta: Record<string, unknown> | undefined, skills: Map<string, string[]>): MeshRequest {
  const skill = message.metadata?.[SKILL_KEY] ?? requestMeta?.[SKILL_KEY]
  if (skill !== undefined && typeof skill !== 'string') throw new RequestMalformedError(`metadata.${SKILL_KEY} must be a string: the id of one of the agent card's skills`)
  const parts = message.parts ?? []
  const data = parts.find(p => p.content?.$case === 'data')?.content?.value
  const texts = parts.flatMap(p => p.content?.$case === 'text' ? [p.content.value] : [])
  if (data === undefined && texts.length === 0) throw new RequestMalformedError('the message needs a text or a data part (file parts are not taken)')
  const text = texts.join('\n')
  if (skill === undefined && !skills.has(AGENT_CAPABILITY)) {
    throw new UnsupportedOperationError(`the message names no skill (metadata.${SKILL_KEY}) and no live peer of the mesh offers the "${AGENT_CAPABILITY}" capability that takes plain text; name one of the agent card's skills`)
  }
  const capability = skill ?? AGENT_CAPABILITY
  const modes = skills.get(capability)
  if (modes === undefined) throw new RequestMalformedError(`no live peer of the mesh offers the skill "${capability.slice(0, 100)}"; the agent card lists the skills`)
  const mode = data !== undefined ? JSON_MODE : TEXT_MODE
  if (!modes.includes(mode)) {
    throw new RequestMalformedError(`the skill "${capability.slice(0, 100)}" takes ${modes.includes(JSON_MODE) ? 'a data part (a JSON object)' : 'a text part'}, not a ${data !== undefined ? 'data' : 'text'} part; the agent card lists each skill's inputModes`)
  }
  if (data !== undefined) return { capability, input: data }
  return { capability, input: capability === AGENT_CAPABILITY ? { prompt: text } : text }
}

/**
 * The idempotency key of a message's task: the same message (by id, in the same context) sent
 * twice to a node is one task. It also carries the context id, so that any node can answer it.
 */
export function idempotencyKeyOf (message: Message): string {
  const contextId = message.contextId ?? ''
  if (message.messageId.length > MAX_ID_CHARS || contextId.length > MAX_ID_CHARS) {
    throw new RequestMalformedError(`messageId and contextId take at most ${MAX_ID_CHARS} characters`)
  }
  return KEY_PREFIX + JSON.stringify([contextId, message.messageId])
}

/** The context id a task was sent in; a task sent without one is its own context. */
export function contextIdOf (record: TaskRecord): string {
  const key = record.task.idempotencyKey
  if (key?.startsWith(KEY_PREFIX) === true) {
    try {
      const [contextId] = JSON.parse(key.slice(KEY_PREFIX.length)) as unknown[]
      if (typeof contextId === 'string' && contextId !== '') return contextId
    } catch {}
  }
  return record.task.id
}

/**
 * The A2A state of a mesh task. A completion whose result has not reached this node yet is still
 * `working` (the next read brings it), said no differently, so that a stream shows no extra step.
 * A failed attempt that will be retried is `working`: A2A's
 * `failed` is final, and the mesh's is final only as `dead` (no attempts left, or the deadline).
 */
export function a2aStateOf (view: MeshTaskView): TaskState {
  const final = view.record.final
  if (final?.state === 'completed') return view.result === undefined ? TaskState.TASK_STATE_WORKING : TaskState.TASK_STATE_COMPLETED
  if (final?.state === 'canceled') return TaskState.TASK_STATE_CANCELED
  if (final?.state === 'dead') return TaskState.TASK_STATE_FAILED
  // waiting for a signal or a person's approval (ctx.waitFor): A2A's interrupted state
  if (stateOf(view.record) === 'waiting') return TaskState.TASK_STATE_INPUT_REQUIRED
  return stateOf(view.record) === 'pending' && currentAttempts(view.record).length === 0 ? TaskState.TASK_STATE_SUBMITTED : TaskState.TASK_STATE_WORKING
}

/** Why the task is where it is, in words, when there is something to say. */
function statusText (view: MeshTaskView): string | undefined {
  const { record } = view
  const final = record.final
  if (final?.state === 'dead') return `the task failed: ${final.reason ?? 'no attempts left'}`
  if (final?.state === 'canceled') return final.reason ?? 'the task was canceled'
  if (final === undefined && stateOf(record) === 'waiting') return `waiting for the signal "${record.waiting?.name ?? ''}" (POST /v1/tasks/${record.task.id}/signal, or agentmesh approve for a tool call)`
  if (final === undefined && stateOf(record) === 'failed') {
    const error = currentAttempts(record).filter(a => a.error !== undefined).at(-1)?.error
    return `an attempt failed${error === undefined ? '' : `: ${error}`}; it will be retried`
  }
  return undefined
}

export function textPart (text: string): Part {
  return { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }
}

function dataPart (value: unknown): Part {
  return { content: { $case: 'data', value }, metadata: undefined, filename: '', mediaType: 'application/json' }
}

/**
 * The result as an artifact: a text part for a string, a data part otherwise (the agent's answer
 * also as text). `nullAsText`: a null result is a text part `null` of media type application/json,
 * for A2A 1.0's wire, where the SDK reads a data part of `null` as no content at all.
 */
function resultArtifact (record: TaskRecord, value: unknown, nullAsText: boolean): Artifact {
  const answer = record.task.capability === AGENT_CAPABILITY && typeof (value as any)?.text === 'string' ? [textPart((value as any).text)] : []
  return {
    artifactId: 'result',
    name: 'result',
    description: `the result of ${record.task.capability}`,
    parts: typeof value === 'string' ? [textPart(value)] : nullAsText && (value ?? null) === null ? [{ ...textPart('null'), mediaType: JSON_MODE }] : [...answer, dataPart(value)],
    metadata: undefined,
    extensions: []
  }
}

/** The A2A task as it is the moment it was submitted: the first event of a stream. */
export function submittedTask (id: string, capability: string, message: Message, at: number): Task {
  return {
    id,
    contextId: message.contextId,
    status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: new Date(at).toISOString() },
    artifacts: [],
    history: [message],
    metadata: { [MESH_META_KEY]: { capability, state: 'pending', attempts: 0 } }
  }
}

/**
 * The A2A task for a mesh task; `history` is the message that started it, when this node has it.
 * `nullAsText`: for A2A 1.0's wire (see resultArtifact).
 */
export function a2aTaskOf (view: MeshTaskView, history: Message[] = [], nullAsText = false): Task {
  const { record } = view
  const id = record.task.id
  const contextId = contextIdOf(record)
  const state = a2aStateOf(view)
  const text = statusText(view)
  // the certified winner; before that, whoever runs it now
  const executor = record.final?.peer ?? record.attempts.find(a => a.outcome === 'completed')?.peer ?? holderOf(record)
  const message: Message | undefined = text === undefined
    ? undefined
    : { messageId: `${id}-${state}-${record.attempts.length}`, contextId, taskId: id, role: Role.ROLE_AGENT, parts: [textPart(text)], metadata: undefined, extensions: [], referenceTaskIds: [] }
  return {
    id,
    contextId,
    status: { state, message, timestamp: new Date(record.final?.at ?? record.updatedAt).toISOString() },
    artifacts: state === TaskState.TASK_STATE_COMPLETED ? [resultArtifact(record, view.result?.value, nullAsText)] : [],
    history,
    metadata: {
      [MESH_META_KEY]: {
        capability: record.task.capability,
        state: record.final?.state ?? stateOf(record),
        attempts: currentAttempts(record).length,
        ...(executor === undefined ? {} : { executor })
      }
    }
  }
}
