import { A2AError, ExtendedAgentCardNotConfiguredError, PushNotificationNotSupportedError, RequestMalformedError, TaskNotCancelableError, TaskNotFoundError, UnsupportedOperationError } from '@a2a-js/sdk/errors'
import { TASK_ID } from '../task/index.js'
import { a2aTaskOf, idempotencyKeyOf, isTerminal, meshRequestOf, submittedTask } from './convert.js'
import { skillsOf } from './card.js'
import { inputProblem } from '../tools/tool-schema.js'
import type { MeshTaskView } from './convert.js'
import type { MessageHistory } from './history.js'
import type { CapabilityInfo } from '../gossip/index.js'
import type { AgentCard, CancelTaskRequest, GetTaskRequest, Message, SendMessageRequest, StreamResponse, SubscribeToTaskRequest, Task } from '@a2a-js/sdk'
import type { A2ARequestHandler, ServerCallContext } from '@a2a-js/sdk/server'

/** Why a push notification config is refused: none is sent. */
export const NO_PUSH = 'this agent sends no push notifications (its card says pushNotifications: false): follow the task with message/stream, tasks/resubscribe or tasks/get'

/** What the A2A door needs of the node: its task service and who is live. */
export interface A2AMesh {
  service: {
    submit: (req: { capability: string, input: unknown, idempotencyKey?: string, timeoutMs?: number }) => Promise<{ id: string }>
    get: (id: string) => Promise<MeshTaskView>
    waitFor: (id: string, waitMs: number) => Promise<MeshTaskView>
    cancel: (id: string) => Promise<MeshTaskView>
  }
  presence: { live: () => Array<{ capabilities: CapabilityInfo[] }> }
}

export interface MeshHandlerInit {
  sendWaitMs: number
  statusPollMs: number
  /** each attempt's timeout, for a message's task */
  attemptTimeoutMs: number
  /** the messages that started tasks here: their history, shared by every request to the door */
  history: MessageHistory
}

/** The key in a call context's state of the AbortSignal that fires when the client leaves. */
export const SIGNAL_KEY = 'agentmesh.signal'
/** The key in a call context's state where a refused submit leaves when to retry, in ms (sent as Retry-After). */
export const RETRY_KEY = 'agentmesh.retryAfterMs'

/**
 * A2A's request handler over the mesh, used by the SDK's JSON-RPC transport handlers. Unlike the
 * SDK's DefaultRequestHandler it keeps no task store of its own: the task is submitted first and
 * its mesh id is the A2A id, and every read asks the task service, so any node answers for any
 * task. There is one message per task (no follow-up turns) and no push notifications.
 */
export class MeshRequestHandler implements A2ARequestHandler {
  private readonly mesh: A2AMesh
  private readonly init: MeshHandlerInit
  private readonly card: AgentCard

  /** answering on A2A 1.0's wire, not 0.3's */
  private readonly v1: boolean

  constructor (mesh: A2AMesh, card: AgentCard, init: MeshHandlerInit, v1 = true) {
    this.mesh = mesh
    this.card = card
    this.init = init
    this.v1 = v1
  }

  private taskOf (view: MeshTaskView, history: Message[] = []): Task {
    return a2aTaskOf(view, history, this.v1)
  }

  async getAgentCard (): Promise<AgentCard> {
    return this.card
  }

  async getAuthenticatedExtendedAgentCard (): Promise<AgentCard> {
    // A2A's own code for it (-32007), not the general unsupported operation (-32004)
    throw new ExtendedAgentCardNotConfiguredError('this agent has no extended card (the card says supportsAuthenticatedExtendedCard: false)')
  }

  async sendMessage (params: SendMessageRequest, context?: ServerCallContext): Promise<Message | Task> {
    // checked before the task is made
    const keep = historyLengthOf(params.configuration?.historyLength)
    const { id, message } = await this.submit(params, context)
    const view = params.configuration?.returnImmediately === true
      ? await this.mesh.service.get(id).catch(rethrow)
      : await this.mesh.service.waitFor(id, this.init.sendWaitMs).catch(rethrow)
    return this.taskOf(view, keep === 0 ? [] : [message])
  }

  async * sendMessageStream (params: SendMessageRequest, context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    // stamped before the submit: its claim (the next event's time) may come before the submit returns
    const submittedAt = Date.now()
    const { id, capability, message } = await this.submit(params, context)
    yield * this.follow(submittedTask(id, capability, message, submittedAt), context)
  }

  async * resubscribe (params: SubscribeToTaskRequest, context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    const view = await this.view(params.id)
    // A2A: a task in a terminal state cannot be subscribed to (it was a stream of the one task)
    const final = view.record.final?.state
    if (final !== undefined) throw new UnsupportedOperationError(`task ${params.id} is already ${final}: there is nothing to subscribe to (tasks/get gives its outcome)`)
    yield * this.follow(this.taskOf(view, this.init.history.of(params.id)), context)
  }

  async getTask (params: GetTaskRequest): Promise<Task> {
    const keep = historyLengthOf(params.historyLength)
    const view = await this.view(params.id)
    return this.taskOf(view, keep === 0 ? [] : this.init.history.of(params.id))
  }

  async cancelTask (params: CancelTaskRequest): Promise<Task> {
    // a task already final (canceled too) is not cancelable, as A2A says; the mesh's own cancel is
    // idempotent and answered a second cancel with the canceled task
    const before = (await this.view(params.id)).record.final?.state
    if (before !== undefined) throw new TaskNotCancelableError(`task ${params.id} is already ${before}`)
    const view = await this.mesh.service.cancel(params.id).catch(rethrow)
    const final = view.record.final?.state
    if (final !== 'canceled') throw new TaskNotCancelableError(`task ${params.id} is ${final ?? 'not final'}: it was not canceled`)
    return this.taskOf(view, this.init.history.of(params.id))
  }

  async listTasks (): Promise<never> {
    throw new UnsupportedOperationError('listing tasks is not offered over A2A; the node lists them at GET /v1/tasks')
  }

  async createTaskPushNotificationConfig (): Promise<never> { throw new PushNotificationNotSupportedError() }
  async getTaskPushNotificationConfig (): Promise<never> { throw new PushNotificationNotSupportedError() }
  async listTaskPushNotificationConfigs (): Promise<never> { throw new PushNotificationNotSupportedError() }
  async deleteTaskPushNotificationConfig (): Promise<never> { throw new PushNotificationNotSupportedError() }

  /** Submits the task a message asks for; the mesh answers with its id. */
  private async submit (params: SendMessageRequest, context: ServerCallContext | undefined): Promise<{ id: string, capability: string, message: Message }> {
    const message = params.message
    if (message === undefined) throw new RequestMalformedError('params.message is required')
    if (!message.messageId) throw new RequestMalformedError('message.messageId is required')
    if (message.taskId) throw new UnsupportedOperationError('a mesh task takes one message: send a new message without taskId (tasks/get and tasks/cancel take the id)')
    // taken and ignored, a client would wait for pushes that never come (the card says none are sent)
    if (params.configuration?.taskPushNotificationConfig != null) throw new PushNotificationNotSupportedError(NO_PUSH)
    const live = this.mesh.presence.live()
    const skills = new Map(skillsOf(live).map(s => [s.id, s.inputModes]))
    const request = meshRequestOf(message, params.metadata, skills)
    // refused before a task is made that could only die of it, as the MCP door does
    const schema = live.flatMap(p => p.capabilities).find(c => c.name === request.capability && c.inputSchema !== undefined)?.inputSchema
    const problem = inputProblem(schema, request.input)
    if (problem !== undefined) throw new RequestMalformedError(`invalid input for the skill "${request.capability}": ${problem}; the agent card's skill describes what it takes`)
    const idempotencyKey = idempotencyKeyOf(message)
    const { id } = await this.mesh.service.submit({ ...request, idempotencyKey, timeoutMs: this.init.attemptTimeoutMs }).catch(err => rethrow(err, context))
    const started = { ...message, taskId: id, contextId: message.contextId || id }
    this.init.history.keep(id, started)
    return { id, capability: request.capability, message: started }
  }

  private async view (id: string): Promise<MeshTaskView> {
    checkId(id)
    return await this.mesh.service.get(id).catch(rethrow)
  }

  /**
   * The task, then each change of its state (a result first as an artifact) until it is final or
   * the client leaves. The state is read every statusPollMs; a final state wakes the wait at once.
   */
  private async * follow (first: Task, context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    const signal = context.state.get(SIGNAL_KEY) as AbortSignal | undefined
    let task = first
    yield { payload: { $case: 'task', value: task } }
    let seen = statusKey(task)
    while (!isTerminal(task.status?.state) && signal?.aborted !== true) {
      task = this.taskOf(await this.mesh.service.waitFor(task.id, this.init.statusPollMs).catch(rethrow))
      if (statusKey(task) === seen) continue
      seen = statusKey(task)
      for (const artifact of task.artifacts) {
        yield { payload: { $case: 'artifactUpdate', value: { taskId: task.id, contextId: task.contextId, artifact, append: false, lastChunk: true, metadata: undefined } } }
      }
      yield { payload: { $case: 'statusUpdate', value: { taskId: task.id, contextId: task.contextId, status: task.status, metadata: task.metadata } } }
    }
  }
}

function checkId (id: unknown): asserts id is string {
  // the 0.3 wire reaches here without a schema check: a number or null is the client's mistake
  if (typeof id !== 'string') throw new RequestMalformedError('params.id must be a string (a mesh task id)')
  if (id === '') throw new RequestMalformedError('a task id is required')
  // nothing else can be a mesh task id: not worth asking the placement
  if (!TASK_ID.test(id)) throw new TaskNotFoundError(`no task ${id.slice(0, 100)}: a mesh task id is 64 hex digits`)
}

function statusKey (task: Task): string {
  const text = task.status?.message?.parts.map(p => p.content?.$case === 'text' ? p.content.value : '').join('')
  return `${task.status?.state ?? ''}|${text ?? ''}`
}

/**
 * A request's historyLength: unset is no limit, 0 no message (A2A: the server MUST NOT return more
 * than asked). A task's history here is at most the message that started it.
 */
function historyLengthOf (length: number | undefined): number | undefined {
  if (length === undefined) return undefined
  if (!Number.isSafeInteger(length) || length < 0) throw new RequestMalformedError(`historyLength must be a whole number, 0 or more, got ${String(length)}`)
  return length
}

/** The task layer's named errors as A2A's; anything else (a programmer's error) as it is. */
/** The mesh's error as A2A's; an overload's wait also goes into `context` (for Retry-After) when given. */
function rethrow (err: any, context?: ServerCallContext): never {
  switch (err?.name) {
    case 'TaskNotFoundError': throw new TaskNotFoundError(String(err.message))
    case 'InvalidTaskError':
    // a message id whose task was made with other options (a retry after the door's attemptTimeoutMs changed)
    case 'IdempotencyConflictError':
    case 'TaskTooLargeError': throw new RequestMalformedError(String(err.message))
    case 'TaskFinishedError': throw new TaskNotCancelableError(String(err.message))
  }
  if (MESH_REFUSALS.includes(err?.name)) {
    // A2A 1.0 carries the name and an overload's wait in the error's ErrorInfo too (0.3's drops it)
    const metadata: Record<string, string> = { meshError: String(err.name) }
    const retryAfterMs = err.name === 'OverloadedError' ? Number(err.retryAfterMs) : NaN
    if (Number.isFinite(retryAfterMs)) {
      metadata.retryAfterMs = String(retryAfterMs)
      context?.state.set(RETRY_KEY, retryAfterMs)
    }
    throw new A2AError({ message: `${String(err.name)}: ${String(err.message)}`, metadata })
  }
  throw err
}

/**
 * The mesh's refusals (no majority, overload, a lease or placement refused): A2A has no code for
 * them, so they go out as its internal error, named in the message. They are not bugs.
 */
const MESH_REFUSALS = ['QuorumUnavailableError', 'OverloadedError', 'LeaseDeniedError', 'PlacementBlockedError']

/** Whether an internal JSON-RPC error is one of the mesh's refusals rather than a bug. */
export function isMeshRefusal (message: string): boolean {
  return MESH_REFUSALS.some(name => message.startsWith(`${name}: `))
}
