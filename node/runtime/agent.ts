import type { CapabilityInfo } from '../../protocols/gossip/index.js'
import type { Task } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'
import type { z } from 'zod'

/** Throw from `run` to fail the task at once, with no retry (as BullMQ's UnrecoverableError). */
export class UnrecoverableTaskError extends Error {
  static override name = 'UnrecoverableTaskError'
  constructor (message: string) { super(message); this.name = 'UnrecoverableTaskError' }
}

/** A subtask ended other than completed. */
export class SubtaskFailedError extends Error {
  static override name = 'SubtaskFailedError'
  readonly taskId: string
  readonly state: string
  constructor (taskId: string, state: string, reason?: string) {
    super(`subtask ${taskId} ${state}${reason === undefined ? '' : `: ${reason}`}`)
    this.name = 'SubtaskFailedError'
    this.taskId = taskId
    this.state = state
  }
}

export interface SubmitOptions {
  idempotencyKey?: string
  maxAttempts?: number
  timeoutMs?: number
}

export interface AgentContext<I = unknown> {
  input: I
  task: { id: string, capability: string, submitter: string, parent?: string, createdAt: number }
  /** 1 for the first attempt */
  attempt: number
  /**
   * aborts when the lease is lost, the task is canceled, or its timeout passes, while the run lasts
   * (not after `run` returned). A run still going abortGraceMs (5 s) after it aborted is ended
   * without the agent: what it returns later is not used
   */
  signal: AbortSignal
  /** reports progress (kept with the task on this node and logged) */
  progress: (event: unknown) => void
  log: Logger
  /** puts a subtask on the mesh (any capable peer may run it) and resolves with its result */
  submit: (capability: string, input: unknown, options?: SubmitOptions) => Promise<unknown>
  /** the capabilities live on the mesh right now, for planners and tool-using agents */
  capabilities: () => CapabilityInfo[]
  /**
   * A durable step: the first time, runs `fn` and stores its (JSON) value with the task on a
   * majority of its replica set; when another peer takes the task over, it gets the stored value
   * instead of running `fn` again. Keys name steps; the same key must mean the same step.
   */
  step: <T>(key: string, fn: () => Promise<T>) => Promise<T>
  /** the mesh's vector memory: records written to a majority of their placement, searched everywhere */
  memory: AgentMemory
  /**
   * A durable wait for the signal `name` (POST /v1/tasks/:id/signal, `agentmesh signal`): the task
   * goes to `waiting`, gives back its lease and slot, and any capable peer resumes it once the
   * signal comes, replaying the journal, so nothing done before the wait runs again. Resolves with
   * the signal's data (checked by `schema`, which the signal route also enforces); a wait that
   * times out fails the attempt with WaitTimeoutError. Like a step key, a name is waited for once.
   */
  waitFor: <T = unknown>(name: string, options?: WaitOptions<T>) => Promise<T>
}

export interface WaitOptions<T> {
  /** @default the task layer's defaultWaitMs (a day) */
  timeoutMs?: number
  schema?: z.ZodType<T>
}

/** What an agent may do with vector memory (see MemoryLayer). */
export interface AgentMemory {
  put: (collection: string, records: Array<{ id: string, text?: string, vector?: number[], metadata?: Record<string, string | number | boolean | null> }>) => Promise<Array<{ id: string, replicas: number }>>
  search: (collection: string, query: { text?: string, vector?: number[], k?: number, filter?: Record<string, string | number | boolean | null> }) => Promise<unknown>
  /** resolves with whether the delete took a record away */
  delete: (collection: string, id: string) => Promise<boolean>
}

export interface Agent<I = any> {
  name: string
  /** names, or names with a description and a JSON schema of the input (shown to LLM agents) */
  capabilities: Array<string | CapabilityInfo>
  /**
   * Tasks this agent runs at once on this node.
   * @default 1
   */
  concurrency?: number
  /** checked before `run`; a mismatch fails the task without retry */
  inputSchema?: z.ZodType<I>
  /**
   * The result is a function of the input alone, and a run has no effect outside it (no subtask,
   * step, wait, memory or outside call), and it is quick: the node that will run such a task (its
   * submitter, or a member it is handed to) may run it before it claims it, and send the claim and
   * the vote in one request a member. A pure agent may then run more than once for one task, as
   * any agent may after a lost lease.
   * @default false
   */
  pure?: boolean
  run: (ctx: AgentContext<I>) => Promise<unknown>
}

/** What an agent is told of its task: a copy of the fields, so what it does to them changes nothing kept. */
export function agentTaskOf (task: Task): AgentContext['task'] {
  return { id: task.id, capability: task.capability, submitter: task.submitter, parent: task.parent, createdAt: task.createdAt }
}
