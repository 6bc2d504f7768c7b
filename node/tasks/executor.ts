import { JSON_VALUE_WHAT, NOT_JSON, cloneJson, finalOf, resultCopy } from '../../protocols/task/index.js'
import { UnrecoverableTaskError, agentTaskOf } from '../runtime/agent.js'
import { SpanStatusCode } from '@opentelemetry/api'
import { inSpan, startSpan, traceparentOf } from '../tracing.js'
import { NodeStoppingError, TaskCanceledError } from './errors.js'
import { ignoreStoreFailed } from '../errors.js'
import { ProgressSender } from './progress.js'
import { durableStep, durableWait } from './durable-context.js'
import { SubtaskLedger, subtask } from './durable-subtask.js'
import { abortWith, withAbortGrace } from './run-signal.js'
import { publishNotice } from './notices.js'
import { completionNotice } from './notifier.js'
import type { TaskComponents } from './components.js'
import type { DurableRun } from './durable-context.js'
import type { RanEvent } from './events.js'
import type { Notifier } from './notifier.js'
import type { TaskService } from './task-service.js'
import type { HeldLease } from '../../protocols/lease/index.js'
import type { ProgressItem } from '../../protocols/records/index.js'
import type { Certificate, StoredResult, Task } from '../../protocols/task/index.js'
import type { Slot } from '../runtime/runtime.js'
import type { WaitOptions } from '../runtime/agent.js'
import type { Logger } from '@libp2p/interface'

export interface ExecutorStats {
  started: number
  completed: number
  failed: number
  /** executions whose result was refused: someone else's term was current (a duplicate execution) */
  duplicateExecutions: number
  /** runs whose lease was lost: aborted by it, or ended with a vote round short of a majority that no member refused */
  leaseLost: number
  /** durable agent steps run here, and replayed from the journal after a takeover */
  stepsRun: number
  stepsReplayed: number
  /** subtasks a run waited for that an earlier attempt of its parent submitted (their ids journaled) */
  subtasksReused: number
  /** subtasks whose id was not journaled: past what the record may give ids, or the write failed (a takeover submits those again) */
  subtaskIdsUnkept: number
  /** progress events an agent reported that were not JSON, or too large to send */
  progressDropped: number
  /** runs that kept their slot while reporting, because maxPendingReports were on their way */
  slotsKeptForReports: number
  /** cancel notices for a run here that carried no certificate of its placement: the run went on */
  forgedCancels: number
  /** runs ended without their agent, still running abortGraceMs after its signal aborted */
  runsAbandoned: number
}

type Ran = (outcome: RanEvent['outcome'], extra?: Partial<RanEvent>) => void

export interface ProgressEvent {
  at: number
  event: unknown
}

/**
 * Runs a task under a held lease: the agent gets an AbortSignal that fires when the lease is lost,
 * the task is canceled or its timeout passes, while the run lasts. A result counts only once a
 * majority of the replica set accepted it under this lease's terms; then the completion is announced.
 */
export class Executor {
  readonly stats: ExecutorStats = { started: 0, completed: 0, failed: 0, duplicateExecutions: 0, leaseLost: 0, stepsRun: 0, stepsReplayed: 0, subtasksReused: 0, subtaskIdsUnkept: 0, progressDropped: 0, slotsKeptForReports: 0, forgedCancels: 0, runsAbandoned: 0 }
  /** recent progress of tasks run here, for the API */
  readonly progress = new Map<string, ProgressEvent[]>()
  private readonly c: TaskComponents
  private readonly tasks: TaskService
  private readonly log: Logger
  /** one logger per agent: making one per run cost a terminal check (isatty) every task */
  private readonly agentLogs = new Map<string, Logger>()
  private readonly cancels = new Map<string, AbortController>()
  private stopping = false
  /** the lease of each run, while it runs: a stop that outlasts its grace lets them go */
  private readonly leases = new Map<string, HeldLease>()
  /** runs reporting their outcome now */
  private pendingReports = 0

  private readonly notifier: Notifier
  /** set by the task layer: a progress event of a task run here, for its submitter (node/tasks/progress.ts) */
  progressOut?: (submitter: string, item: ProgressItem) => void

  /** Called when a run's slot frees (its agent returned), while its result may still be on its way: the claimer's backlog takes it. */
  onSlotFree?: (capability: string) => void

  constructor (components: TaskComponents, tasks: TaskService, notifier: Notifier) {
    this.c = components
    this.tasks = tasks
    this.notifier = notifier
    this.log = components.logger('agentmesh:executor')
  }

  running (): string[] {
    return [...this.cancels.keys()]
  }

  /** Aborts a local execution: the task was canceled elsewhere. */
  cancel (id: string): void {
    this.cancels.get(id)?.abort(new TaskCanceledError())
  }

  /** A graceful stop: running agents are aborted and their leases given back without burning an attempt. */
  stop (): void {
    this.stopping = true
    for (const controller of this.cancels.values()) controller.abort(new NodeStoppingError())
  }

  /**
   * After a stop's grace: the leases of runs whose agent still ignores its abort are let go here
   * (their renew timers stopped; the members see them lapse). They renewed until the agent returned,
   * on a node whose network was already gone.
   */
  abandon (): void {
    for (const lease of this.leases.values()) lease.lose('the node stopped while the agent was still running')
    this.leases.clear()
  }

  /** A run's lease is no longer the stop's to let go (its agent returned, or the run ended). */
  private forgetLease (id: string, lease: HeldLease): void {
    if (this.leases.get(id) === lease) this.leases.delete(id)
  }

  /**
   * Runs `task` under `lease`. Whatever happens, the lease ends here: completed, failed, released
   * or lost; a throw anywhere (even before the agent starts) releases it instead of leaving it to
   * renew forever.
   */
  async run (task: Task, lease: HeldLease, slot: Slot): Promise<void> {
    // a claim that came through after the node began to stop: given back, not run
    if (this.stopping) {
      slot.release()
      await lease.release(false).catch(() => {})
      return
    }
    const cancel = new AbortController()
    this.cancels.set(task.id, cancel)
    this.leases.set(task.id, lease)
    this.stats.started++
    const started = performance.now()
    const span = startSpan('agentmesh.run', task.traceparent, { 'agentmesh.task': task.id, 'agentmesh.capability': task.capability, 'agentmesh.attempt': lease.attempt, 'agentmesh.claim': lease.claimId })
    // subtasks and the commit are children of this run
    const runContext = traceparentOf(span)
    let generation = 0
    const ran = (outcome: RanEvent['outcome'], extra: Partial<RanEvent> = {}): void => {
      span.setAttribute('agentmesh.outcome', outcome)
      if (outcome !== 'completed') span.setStatus({ code: SpanStatusCode.ERROR, message: extra.error ?? outcome })
      this.c.events.safeDispatchEvent('ran', { detail: { id: task.id, capability: task.capability, generation, claimId: lease.claimId, outcome, runMs: performance.now() - started + (lease.prerun?.ms ?? 0), ...extra } })
    }
    let settled = false
    // the slot bounds the agent's runs: it is free once the agent returns, not once its result is
    // voted and committed (a few round trips and fsyncs), so the next task starts meanwhile
    let freed = false
    const freeSlot = (): void => {
      if (freed) return
      freed = true
      slot.release()
      this.c.presence.slotsChanged()
      this.onSlotFree?.(task.capability)
    }
    let unlink = (): void => {}
    try {
      const local = await this.c.replica.get(task.id)
      // a copy made from an announcement of a redriven task says generation 0: the grants know better
      generation = Math.max(local.record?.generation ?? 0, lease.generation)
      // the cancel's controller is the run's: it also aborts on a lost lease and on the timeout
      unlink = abortWith(cancel, lease.signal, task.timeoutMs)
      const signal = cancel.signal
      const events: ProgressEvent[] = []
      this.progress.set(task.id, events)
      // progress of the last progressTasks tasks run here: a daemon runs for months
      if (this.progress.size > this.c.options.progressTasks) this.progress.delete(this.progress.keys().next().value as string)
      const log = this.agentLog(slot.agent.name)
      const durable: DurableRun = { task, lease, signal, tasks: this.tasks, options: this.c.options, stats: this.stats, subtasks: new SubtaskLedger() }
      let seq = 0
      let value: unknown
      try {
        // a pure agent's run made here before the claim: its result, not a second run
        value = lease.prerun !== undefined ? lease.prerun.result : await withAbortGrace(this.c.runtime.run(slot.agent, {
          // copies of what the replica keeps, here and below: an agent may change what it is given
          input: cloneJson(task.input),
          task: agentTaskOf(task),
          // from the grant, not the local copy, which may have missed an earlier attempt: the
          // granting majority overlaps every earlier one, so one of them knows it
          attempt: lease.attempt,
          signal,
          log,
          progress: event => {
            const at = Date.now()
            events.push({ at, event })
            if (events.length > this.c.options.progressEventsPerTask) events.shift()
            if (this.sendProgress(task, lease, seq, at, event)) seq++
          },
          submit: async (capability, input, options) => subtask(durable, signal, capability, input, options, runContext),
          step: async <T>(key: string, fn: () => Promise<T>): Promise<T> => durableStep(durable, key, fn),
          capabilities: () => this.liveCapabilities(),
          memory: this.c.memory,
          waitFor: async <T>(name: string, options?: WaitOptions<T>): Promise<T> => durableWait(durable, name, options)
        }), signal, this.c.options.abortGraceMs)
      } catch (err: any) {
        settled = true
        this.forgetLease(task.id, lease)
        if (err?.name === 'TaskSuspendedError' && !lease.held) {
          freeSlot()
          // the placement keeps the wait: any capable peer resumes the task from its journal
          ran('suspended', { error: err.message })
          this.log('task %s waits for %s', task.id, err.waitingFor)
          return
        }
        await this.reportOutcome(freeSlot, async () => { await this.onFailure(task, lease, generation, signal, err, ran) })
        return
      }
      settled = true
      // the agent returned: its report gives the lease back (a stop's abandon is for agents still running)
      this.forgetLease(task.id, lease)
      await this.reportOutcome(freeSlot, async () => { await this.onResult(task, lease, generation, value, ran, runContext) })
    } catch (err: any) {
      if (err?.name === 'TypeError' || err?.name === 'ReferenceError') throw err
      this.log('run of %s ended by an error: %s', task.id, err?.message)
    } finally {
      // still renewing here means the run ended without a report: give the lease back
      span.end()
      // the signal stays as it is: aborting it now would reject whatever the agent left running on
      // it, and an unhandled rejection ends the process
      unlink()
      if (lease.held) await lease.release(settled).catch(() => {})
      this.cancels.delete(task.id)
      this.forgetLease(task.id, lease)
      freeSlot()
    }
  }

  /** Outcomes being reported now (voted, committed), with their slots given back or not. */
  get reportsPending (): number {
    return this.pendingReports
  }

  /** Reports a run's outcome, its slot given back first while at most maxPendingReports, this one included, are on their way. */
  private async reportOutcome (freeSlot: () => void, report: () => Promise<void>): Promise<void> {
    this.pendingReports++
    try {
      if (this.pendingReports <= this.c.options.maxPendingReports) freeSlot()
      else this.stats.slotsKeptForReports++
      await report()
    } finally {
      this.pendingReports--
    }
  }

  private agentLog (name: string): Logger {
    let log = this.agentLogs.get(name)
    if (log === undefined) {
      log = this.c.logger(`agentmesh:agent:${name}`)
      this.agentLogs.set(name, log)
    }
    return log
  }

  /** Progress goes to the submitter as it happens, numbered within this claim; false when it cannot go. */
  private sendProgress (task: Task, lease: HeldLease, seq: number, at: number, raw: unknown): boolean {
    if (this.progressOut === undefined) return false
    const event = ProgressSender.wire(raw)
    if (event === undefined) {
      this.stats.progressDropped++
      return false
    }
    this.progressOut(task.submitter, { id: task.id, claimId: lease.claimId, attempt: lease.attempt, ...(lease.generation === 0 ? {} : { generation: lease.generation }), seq, at, event })
    return true
  }

  private async onResult (task: Task, lease: HeldLease, generation: number, value: unknown, ran: Ran, runContext: string): Promise<void> {
    const me = this.c.peerId.toString()
    // a copy: the agent may still hold and change what it returned, and a result is hashed once
    const { stored, size } = resultCopy(value)
    // neither would ever be accepted: members hash what arrives, which is not what a Date or a class hashed to here
    const refused = stored === NOT_JSON ? `the result is not ${JSON_VALUE_WHAT}` : size > this.c.options.maxResultBytes ? `result of ${size} bytes exceeds the limit of ${this.c.options.maxResultBytes}` : undefined
    if (refused !== undefined) {
      ran('failed', { error: refused })
      await this.report(task, lease, generation, refused, true)
      return
    }
    let cert: Certificate
    try {
      // tried even after the lease was lost: if nobody was granted a newer term the result still counts
      cert = await inSpan('agentmesh.commit', runContext, { 'agentmesh.task': task.id }, async () => lease.complete(stored, size, generation))
    } catch (err: any) {
      if (err.name === 'QuorumUnavailableError') {
        // short of a majority for want of answers, no member having refused it: this node cannot
        // tell whether a rival won, and silent members may yet vote for this result (a paused one,
        // on waking). Not counted as a duplicate; a stop's own cut-off round is not reported at all
        this.log('result of %s not certified: %s', task.id, err.message)
        if (!this.stopping) this.lostLease(task, ran, `its result was not certified: ${String(err.message)}, none refusing it for a rival's claim (a member at which the lease lapsed refuses it for its clock); a rival may or may not hold the task, and members that answer later may still certify it`)
        return
      }
      if (err.name === 'StaleTermError') this.stats.duplicateExecutions++
      ran(err.name === 'StaleTermError' ? 'duplicate' : 'failed', { error: err.message })
      this.log('result of %s not accepted: %s', task.id, err.message)
      return
    }
    this.stats.completed++
    ran('completed', { latencyMs: Math.max(0, Date.now() - task.createdAt) })
    await this.keepFinal(task.id, cert, { claimId: lease.claimId, peer: me, value: stored as never, size, at: Date.now() })
    // told to the submitter alone, which waits on it; any other reader asks the placement
    this.notifier.notifyOutcome(task.submitter, lease, completionNotice(task, { generation, claimId: lease.claimId, peer: me }, stored, size, cert, this.c.options.maxInlineResultBytes))
  }

  /** A run that ended without its lease: counted, its outcome told, and the event the operations log warns of. */
  private lostLease (task: Task, ran: Ran, reason: string): void {
    this.stats.leaseLost++
    ran('lease-lost', { error: reason })
    this.c.events.safeDispatchEvent('lease-lost', { detail: { id: task.id, capability: task.capability, reason } })
  }

  private async onFailure (task: Task, lease: HeldLease, generation: number, signal: AbortSignal, err: any, ran: Ran): Promise<void> {
    if (err?.name === 'AgentIgnoredAbortError') {
      this.stats.runsAbandoned++
      this.log('run of %s abandoned: %s', task.id, err.message)
      // the stop's abandon already let its lease go: nothing is lost but the node's own run
      if (this.stopping) return
    }
    if (lease.signal.aborted) {
      // the members expire the lease themselves; reporting under a lost lease would be refused
      const reason = String((lease.signal.reason as Error)?.message ?? 'lease lost')
      this.lostLease(task, ran, reason)
      this.log('lost the lease on %s: %s', task.id, reason)
      return
    }
    // a cancel notice is a hint: the run ends as canceled only when the cancel is certified (a
    // forged notice, believed, would give the task back without an attempt spent, again and again)
    if ((signal.reason as Error | undefined)?.name === 'TaskCanceledError' && (await this.tasks.find(task.id))?.record.final?.state === 'canceled') {
      ran('canceled')
      await lease.release(false)
      return
    }
    if (this.stopping || (signal.reason as Error | undefined)?.name === 'NodeStoppingError') {
      // not the task's fault: given back at once, no attempt burnt
      await lease.release(false)
      return
    }
    // a timed-out wait would time out again at once on every retry; an error that says it is
    // unrecoverable (InvalidPlanError: its answers replay from the journal) fails alike on every one
    const unrecoverable = err?.name === 'UnrecoverableTaskError' || err?.name === 'WaitTimeoutError' || err?.unrecoverable === true
    const reason = err?.name === 'AgentIgnoredAbortError'
      ? String(err.message)
      : signal.aborted && !unrecoverable
        ? `aborted: ${(signal.reason as Error)?.message ?? 'timeout'}`
        : String(err?.message ?? err)
    ran('failed', { error: reason })
    await this.report(task, lease, generation, reason, unrecoverable)
  }

  private async report (task: Task, lease: HeldLease, generation: number, error: string, unrecoverable: boolean): Promise<void> {
    this.stats.failed++
    const cert = await lease.fail(error, unrecoverable, generation)
    if (cert !== undefined) {
      await this.keepFinal(task.id, cert)
      this.c.events.safeDispatchEvent('dead', { detail: { id: task.id, capability: task.capability, reason: cert.value.reason ?? error } })
    }
    const me = this.c.peerId.toString()
    await publishNotice(this.c, { id: task.id, capability: task.capability, event: cert === undefined ? 'failed' : 'dead', generation, claimId: lease.claimId, peer: me, error: error.slice(0, 4096), ...(cert === undefined ? {} : { cert }) })
  }

  /** Keeps the certified outcome in this node's copy (checked like any other). */
  private async keepFinal (id: string, cert: Certificate, result?: StoredResult): Promise<void> {
    const { record } = await this.c.replica.get(id)
    // a waiter on this node hears no gossip of its own notice: woken here, whatever the copy holds
    if (record === undefined || record.final !== undefined) {
      this.tasks.wake(id)
      return
    }
    const final = finalOf(cert, Date.now(), result)
    // a store that failed a write (a full disk) keeps no copy; the outcome a majority certified stands, and is told
    await this.c.replica.put({ ...record, final, updatedAt: Date.now() }, result).catch(ignoreStoreFailed)
    this.tasks.wake(id)
  }

  private liveCapabilities (): Array<{ name: string, description?: string, inputSchema?: Record<string, unknown> }> {
    const seen = new Map<string, { name: string, description?: string, inputSchema?: Record<string, unknown> }>()
    for (const peer of this.c.presence.live()) for (const cap of peer.capabilities) if (!seen.has(cap.name)) seen.set(cap.name, cap)
    return [...seen.values()]
  }
}
