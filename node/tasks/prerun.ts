import { NOT_JSON, cloneJson, resultCopy } from '../../protocols/task/index.js'
import { agentTaskOf } from '../runtime/agent.js'
import type { Prerun } from '../../protocols/lease/index.js'
import type { Task } from '../../protocols/task/index.js'
import type { Agent, AgentMemory } from '../runtime/agent.js'
import type { AgentRuntime } from '../runtime/runtime.js'
import type { Logger } from '@libp2p/interface'

/** A pure agent asked for what only a claimed run may do (a subtask, a step, a wait, memory, the mesh's capabilities). */
export class NotPureError extends Error {
  static override name = 'NotPureError'
  constructor (what: string) { super(`${what}: a pure agent's run may come before its claim, and depends on its input alone`); this.name = 'NotPureError' }
}

const refuse = (what: string) => async (): Promise<never> => { throw new NotPureError(what) }
const NO_MEMORY: AgentMemory = { put: refuse('memory.put'), search: refuse('memory.search'), delete: refuse('memory.delete') }

export interface PrerunLimits {
  /** the longest a run before the claim may take (prerunMaxMs) */
  maxMs: number
  /** the largest result it may give: one request carries the record and the result */
  maxResultBytes: number
}

/**
 * Runs a pure agent's task (Agent.pure) before its claim, on the node that will hold it, so the
 * claim carries the vote (PrerunVotes): one request a member for the whole task. Undefined when the
 * agent is not pure, throws, asks for what only a claimed run may do, outlasts `maxMs` (or the
 * task's timeout), or returns what is not JSON or larger than `maxResultBytes`: the task is then
 * claimed and run the usual way (a pure agent may run twice), where such outcomes are reported.
 */
export async function runBeforeClaim (runtime: Pick<AgentRuntime, 'run'>, agent: Agent, task: Task, limits: PrerunLimits, log: Logger): Promise<Prerun | undefined> {
  if (agent.pure !== true) return undefined
  const controller = new AbortController()
  const started = performance.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const late = new Promise<undefined>(resolve => {
      timer = setTimeout(() => {
        controller.abort(new Error('the run before the claim took too long'))
        resolve(undefined)
      }, Math.max(1, Math.min(task.timeoutMs, limits.maxMs)))
    })
    const run = runtime.run(agent, {
      input: cloneJson(task.input),
      task: agentTaskOf(task),
      attempt: 1,
      signal: controller.signal,
      log,
      progress: () => {},
      submit: refuse('a subtask'),
      step: refuse('a durable step'),
      waitFor: refuse('a wait'),
      capabilities: () => { throw new NotPureError('the mesh\'s capabilities') },
      memory: NO_MEMORY
    })
    // a run given up on may still fail later: nobody waits for it
    run.catch(() => {})
    const value = await Promise.race([run, late])
    const { stored: result, size } = controller.signal.aborted ? { stored: NOT_JSON, size: 0 } : resultCopy(value)
    if (result !== NOT_JSON && size <= limits.maxResultBytes) return { result, size, ms: performance.now() - started }
    log('%s is claimed and run the usual way: its run before the claim %s', task.id, controller.signal.aborted ? `took over ${limits.maxMs} ms` : result === NOT_JSON ? 'gave no JSON' : `gave ${size} bytes`)
    return undefined
  } catch (err: any) {
    log('%s is claimed and run the usual way: its run before the claim failed: %s', task.id, err?.message)
    return undefined
  } finally {
    clearTimeout(timer)
  }
}
