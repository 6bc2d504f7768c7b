import { byteLength } from '../../protocols/task/index.js'
import { SubtaskFailedError } from '../runtime/agent.js'
import type { TaskComponents } from './components.js'
import type { TaskService } from './task-service.js'
import type { HeldLease } from '../../protocols/lease/index.js'
import type { Task } from '../../protocols/task/index.js'
import type { Slot } from '../runtime/runtime.js'
import type { Logger } from '@libp2p/interface'

export interface ExecutorStats {
  started: number
  completed: number
  failed: number
  /** executions whose result was refused: someone else's term was current (a duplicate execution) */
  duplicateExecutions: number
  leaseLost: number
  /** durable agent steps run here, and replayed from the journal after a takeover */
  stepsRun: number
  stepsReplayed: number
}

export interface ProgressEvent {
  at: number
  event: unknown
}

/**
 * Runs a task under a held lease: the agent gets an AbortSignal that fires when the lease is lost,
 * the task is canceled or its timeout passes. A result counts only once a majority of the replica
 * set accepted it under this lease's terms; then the completion is announced.
 */
export class Executor {
  readonly stats: ExecutorStats = { started: 0, completed: 0, failed: 0, duplicateExecutions: 0, leaseLost: 0, stepsRun: 0, stepsReplayed: 0 }
  /** recent progress of tasks run here, for the API */
  readonly progress = new Map<string, ProgressEvent[]>()
  private readonly c: TaskComponents
  private readonly tasks: TaskService
  private readonly log: Logger
  private readonly cancels = new Map<string, AbortController>()

  constructor (components: TaskComponents, tasks: TaskService) {
    this.c = components
    this.tasks = tasks
    this.log = components.logger('agentmesh:executor')
  }

  running (): string[] {
    return [...this.cancels.keys()]
  }

  /** Aborts a local execution (the task was canceled elsewhere). */
  abort (id: string, reason: string): void {
    this.cancels.get(id)?.abort(new Error(reason))
  }

  stop (): void {
    for (const controller of this.cancels.values()) controller.abort(new Error('node stopping'))
  }

  async run (task: Task, lease: HeldLease, slot: Slot): Promise<void> {
    const me = this.c.peerId.toString()
    const cancel = new AbortController()
    this.cancels.set(task.id, cancel)
    this.stats.started++
    const local = await this.c.replica.get(task.id)
    const generation = local.record?.generation ?? 0
    // from the grant, not the local copy, which may have missed an earlier attempt: the granting
    // majority overlaps every earlier one, so one of them knows it
    const attempt = lease.attempt
    // not gossiped: the replicas that granted the lease know the holder, and a third message per
    // task costs every peer a signature check; only the local copy learns it now
    await this.tasks.applyNotice({ kind: 'notice', from: me, at: Date.now(), id: task.id, capability: task.capability, event: 'running', generation, claimId: lease.claimId, peer: me })
    const signal = AbortSignal.any([lease.signal, cancel.signal, AbortSignal.timeout(task.timeoutMs)])
    const events: ProgressEvent[] = []
    this.progress.set(task.id, events)
    // progress of the last 1,000 tasks run here: a daemon runs for months
    if (this.progress.size > 1_000) this.progress.delete(this.progress.keys().next().value as string)
    const log = this.c.logger(`agentmesh:agent:${slot.agent.name}`)
    try {
      let value: unknown
      try {
        value = await this.c.runtime.run(slot.agent, {
          input: task.input,
          task: { id: task.id, capability: task.capability, submitter: task.submitter, parent: task.parent, createdAt: task.createdAt },
          attempt,
          signal,
          log,
          progress: event => {
            events.push({ at: Date.now(), event })
            if (events.length > 100) events.shift()
          },
          submit: async (capability, input, options) => this.submitChild(task.id, signal, capability, input, options),
          step: async <T>(key: string, fn: () => Promise<T>): Promise<T> => this.step(task, key, fn),
          capabilities: () => this.liveCapabilities()
        })
      } catch (err: any) {
        await this.onFailure(task, lease, generation, signal, err)
        return
      }
      await this.onResult(task, lease, generation, value)
    } finally {
      slot.release()
      this.cancels.delete(task.id)
      this.c.presence.slotsChanged()
    }
  }

  private async onResult (task: Task, lease: HeldLease, generation: number, value: unknown): Promise<void> {
    const me = this.c.peerId.toString()
    const stored = value === undefined ? null : value
    const size = byteLength(stored)
    if (size > this.c.options.maxResultBytes) {
      await this.report(task, lease, generation, `result of ${size} bytes exceeds the limit of ${this.c.options.maxResultBytes}`, true)
      return
    }
    try {
      // tried even after the lease was lost: if nobody was granted a newer term the result still counts
      await lease.complete(stored, size)
    } catch (err: any) {
      if (err.name === 'StaleTermError') this.stats.duplicateExecutions++
      this.log('result of %s not accepted: %s', task.id, err.message)
      return
    }
    this.stats.completed++
    const inline = size <= this.c.options.maxInlineResultBytes
    const notice = { id: task.id, capability: task.capability, event: 'completed' as const, generation, claimId: lease.claimId, peer: me, resultSize: size, ...(inline ? { result: stored as never } : {}) }
    await this.c.replica.put((await this.c.replica.get(task.id)).record ?? { task, generation, attempts: [], updatedAt: Date.now() },
      { claimId: lease.claimId, peer: me, value: stored as never, size, at: Date.now() })
    await this.tasks.applyNotice({ kind: 'notice', from: me, at: Date.now(), ...notice, result: stored as never })
    await this.c.gossip.publishNotice(notice)
  }

  private async onFailure (task: Task, lease: HeldLease, generation: number, signal: AbortSignal, err: any): Promise<void> {
    if (lease.signal.aborted) {
      // the replicas expire the lease themselves; reporting under a lost lease would be refused
      this.stats.leaseLost++
      this.log('lost the lease on %s: %s', task.id, (lease.signal.reason as Error)?.message)
      return
    }
    const reason = signal.aborted && !(err?.name === 'UnrecoverableTaskError')
      ? `aborted: ${(signal.reason as Error)?.message ?? 'timeout'}`
      : String(err?.message ?? err)
    await this.report(task, lease, generation, reason, err?.name === 'UnrecoverableTaskError')
  }

  private async report (task: Task, lease: HeldLease, generation: number, error: string, unrecoverable: boolean): Promise<void> {
    this.stats.failed++
    const { dead } = await lease.fail(error, unrecoverable)
    const me = this.c.peerId.toString()
    const notice = { id: task.id, capability: task.capability, event: dead ? 'dead' as const : 'failed' as const, generation, claimId: lease.claimId, peer: me, error: error.slice(0, 4096) }
    await this.tasks.applyNotice({ kind: 'notice', from: me, at: Date.now(), ...notice })
    await this.c.gossip.publishNotice(notice)
  }

  /** A durable step (see AgentContext.step): replayed from the journal, else run and journaled. */
  private async step<T> (task: Task, key: string, fn: () => Promise<T>): Promise<T> {
    const current = (await this.tasks.find(task.id))?.record
    if (current?.journal !== undefined && key in current.journal) {
      this.stats.stepsReplayed++
      return current.journal[key] as T
    }
    const value = await fn()
    const base = (await this.c.replica.get(task.id)).record ?? current
    if (base !== undefined) {
      const journaled = { ...base, journal: { ...base.journal, [key]: (value === undefined ? null : value) as never }, updatedAt: Date.now() }
      // on a majority before the agent goes on: a takeover then finds it
      await this.tasks.storeOnReplicas(journaled).catch(err => { this.log('step %s of %s not journaled on a majority: %s', key, task.id, err.message) })
    }
    this.stats.stepsRun++
    return value
  }

  private async submitChild (parent: string, signal: AbortSignal, capability: string, input: unknown, options: { idempotencyKey?: string, maxAttempts?: number, timeoutMs?: number } = {}): Promise<unknown> {
    const { id } = await this.tasks.submit({ capability, input, parent, ...options })
    let missingResult = 0
    while (true) {
      signal.throwIfAborted()
      const view = await this.tasks.waitFor(id, 5_000)
      const final = view.record.final
      if (final === undefined) continue
      if (final.state !== 'completed') throw new SubtaskFailedError(id, final.state, final.reason)
      if (view.result !== undefined) return view.result.value
      // completed, but no replica answered with the result yet: ask again, a bounded number of times
      if (++missingResult > 10) throw new SubtaskFailedError(id, 'completed', 'result unavailable from its replicas')
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }

  private liveCapabilities (): Array<{ name: string, description?: string, inputSchema?: Record<string, unknown> }> {
    const seen = new Map<string, { name: string, description?: string, inputSchema?: Record<string, unknown> }>()
    for (const peer of this.c.presence.live()) for (const cap of peer.capabilities) if (!seen.has(cap.name)) seen.set(cap.name, cap)
    return [...seen.values()]
  }
}
