import { NOT_JSON, byteLength, cloneJson, copyJson } from '../../protocols/task/index.js'
import type { RanAhead } from '../../protocols/lease/index.js'
import type { Task } from '../../protocols/task/index.js'
import type { Agent, AgentMemory } from '../runtime/agent.js'
import type { AgentRuntime } from '../runtime/runtime.js'
import type { Logger } from '@libp2p/interface'

/** A pure agent asked for what only a claimed run may do (a subtask, a step, a wait, memory). */
export class NotPureError extends Error {
  static override name = 'NotPureError'
  constructor (what: string) { super(`${what}: a pure agent's run may come before its claim, and has no effect outside its result`); this.name = 'NotPureError' }
}

const refuse = (what: string) => async (): Promise<never> => { throw new NotPureError(what) }
const NO_MEMORY: AgentMemory = { put: refuse('memory.put'), search: refuse('memory.search'), delete: refuse('memory.delete') }

/**
 * Runs a pure agent's task (Agent.pure) before its claim, on the node that will hold it, so the
 * claim carries the vote (AheadVotes): one request a member for the whole task. Undefined when the
 * agent is not pure, throws, asks for what only a claimed run may do, or returns what members would
 * refuse: the task then runs the usual way, under its lease, where such outcomes are reported.
 */
export async function runAhead (runtime: Pick<AgentRuntime, 'run'>, agent: Agent, task: Task, maxResultBytes: number, log: Logger): Promise<RanAhead | undefined> {
  if (agent.pure !== true) return undefined
  try {
    const value = await runtime.run(agent, {
      input: cloneJson(task.input),
      task: { id: task.id, capability: task.capability, submitter: task.submitter, parent: task.parent, createdAt: task.createdAt },
      attempt: 1,
      signal: AbortSignal.timeout(task.timeoutMs),
      log,
      progress: () => {},
      submit: refuse('a subtask'),
      step: refuse('a durable step'),
      waitFor: refuse('a wait'),
      capabilities: () => [],
      memory: NO_MEMORY
    })
    const result = copyJson(value === undefined ? null : value)
    if (result === NOT_JSON) return undefined
    const size = byteLength(result)
    return size > maxResultBytes ? undefined : { result, size }
  } catch {
    return undefined
  }
}
