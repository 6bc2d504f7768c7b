import { QuorumUnavailableError, majority } from '../../protocols/lease/index.js'
import { byteLength, capabilitySchema, makeTask, mergeRecords, newRecord, stateOf, taskId } from '../../protocols/task/index.js'
import { InvalidTaskError, TaskNotFoundError, TaskTooLargeError } from './errors.js'
import type { TaskComponents } from './components.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { StoredResult, TaskRecord, TaskState } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'

export interface SubmitRequest {
  capability: string
  input: unknown
  idempotencyKey?: string
  maxAttempts?: number
  timeoutMs?: number
  /** ms after submit when the task goes dead if not finished */
  deadlineMs?: number
  parent?: string
}

export interface SubmitAnswer {
  id: string
  /** false when the idempotency key named an existing task */
  created: boolean
  warning?: string
}

export interface TaskView {
  record: TaskRecord
  result?: StoredResult
}

export interface ListFilter {
  state?: TaskState
  capability?: string
  parent?: string
  /** @default 100 */
  limit?: number
}

/**
 * Submitting, finding, waiting for and canceling tasks, from any node. The node's own store holds
 * what it knows of each task; what it lacks it asks the task's replica set for.
 */
export class TaskService {
  readonly stats = { submitted: 0, noticesApplied: 0 }
  private readonly c: TaskComponents
  private readonly log: Logger
  private readonly waiters = new Map<string, Set<(byNotice: boolean) => void>>()
  private readonly onNotice = (evt: CustomEvent<TaskNotice>): void => {
    this.applyNotice(evt.detail).catch(err => { this.log('notice for %s not applied: %s', evt.detail.id, err.message) })
  }

  constructor (components: TaskComponents) {
    this.c = components
    this.log = components.logger('agentmesh:tasks')
  }

  start (): void {
    this.c.gossip.addEventListener('notice', this.onNotice)
  }

  stop (): void {
    this.c.gossip.removeEventListener('notice', this.onNotice)
    for (const set of this.waiters.values()) for (const wake of set) wake(false)
    this.waiters.clear()
  }

  async submit (req: SubmitRequest): Promise<SubmitAnswer> {
    const o = this.c.options
    if (!capabilitySchema.safeParse(req.capability).success) throw new InvalidTaskError(`invalid capability "${String(req.capability)}"`)
    if (req.input === undefined) throw new InvalidTaskError('input is required (any JSON value)')
    const maxAttempts = req.maxAttempts ?? o.defaultMaxAttempts
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) throw new InvalidTaskError('maxAttempts must be a whole number from 1 to 100')
    const timeoutMs = req.timeoutMs ?? o.defaultTimeoutMs
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new InvalidTaskError('timeoutMs must be a positive whole number')
    const size = byteLength(req.input)
    if (size > o.maxInputBytes) throw new TaskTooLargeError(`input of ${size} bytes exceeds the limit of ${o.maxInputBytes}`)
    const submitter = this.c.peerId.toString()
    if (req.idempotencyKey !== undefined) {
      const id = taskId({ capability: req.capability, input: req.input, submitter, idempotencyKey: req.idempotencyKey })
      if (await this.find(id) !== undefined) return { id, created: false }
    }
    const now = Date.now()
    const task = makeTask({
      capability: req.capability,
      input: req.input,
      submitter,
      idempotencyKey: req.idempotencyKey,
      maxAttempts,
      timeoutMs,
      deadline: now + (req.deadlineMs ?? o.defaultDeadlineMs),
      parent: req.parent,
      now
    })
    const record = newRecord(task, now)
    await this.storeOnReplicas(record)
    this.stats.submitted++
    await this.c.gossip.announceTask(task)
    const offered = this.c.presence.live().some(p => p.capabilities.some(cap => cap.name === task.capability))
    return { id: task.id, created: true, ...(offered ? {} : { warning: `no live peer offers ${task.capability} yet; the task waits for one until its deadline` }) }
  }

  /** Stores a record on a majority of its replica set (and here), each on disk before it answers. */
  async storeOnReplicas (record: TaskRecord, result?: StoredResult): Promise<void> {
    const replicas = this.c.replicaSets.for(record.task.id)
    const answers = await Promise.allSettled(replicas.map(async peer => this.c.records(peer, { op: 'put', record, ...(result === undefined ? {} : { result }) })))
    const ok = answers.filter(a => a.status === 'fulfilled' && a.value?.status === 'OK').length
    if (!replicas.some(p => p.equals(this.c.peerId))) await this.c.replica.put(record, result)
    if (ok < majority(replicas.length)) {
      const reasons = answers.map(a => a.status === 'rejected' ? String(a.reason?.message ?? a.reason) : String(a.value?.status ?? 'no answer'))
      throw new QuorumUnavailableError(`task stored on ${ok} of ${replicas.length} replicas (${reasons.join('; ')})`)
    }
  }

  /** What this node knows, refreshed from the replica set unless it is already final here. */
  async find (id: string): Promise<TaskView | undefined> {
    const local = await this.c.replica.get(id)
    if (local.record?.final !== undefined && (local.record.final.state !== 'completed' || local.result !== undefined)) return { record: local.record, result: local.result }
    let record = local.record
    let result = local.result
    const answers = await Promise.allSettled(this.c.replicaSets.for(id)
      .filter(p => !p.equals(this.c.peerId))
      .map(async peer => this.c.records(peer, { op: 'get', id })))
    for (const a of answers) {
      if (a.status !== 'fulfilled' || a.value?.status !== 'OK') continue
      if (a.value.record !== undefined) record = record === undefined ? a.value.record : mergeRecords(record, a.value.record)
      result ??= a.value.result
    }
    if (record === undefined) return undefined
    // kept: the next read is local
    record = await this.c.replica.put(record, result)
    return { record, result }
  }

  async get (id: string): Promise<TaskView> {
    const view = await this.find(id)
    if (view === undefined) throw new TaskNotFoundError(id)
    return view
  }

  /** Resolves once the task is final or `waitMs` passes; asks the replicas now and then in case a notice was lost. */
  async waitFor (id: string, waitMs: number): Promise<TaskView> {
    const deadline = Date.now() + waitMs
    let view = await this.get(id)
    // a completed record read before its result arrived here is not done yet
    const done = (v: TaskView): boolean => v.record.final !== undefined && (v.record.final.state !== 'completed' || v.result !== undefined)
    // each poll asks every replica: with many waits pending, a fixed 1 s poll was most of the load
    let pollMs = this.c.options.waitPollBaseMs
    while (!done(view) && Date.now() < deadline) {
      const noticed = await new Promise<boolean>(resolve => {
        const set = this.waiters.get(id) ?? new Set()
        this.waiters.set(id, set)
        const wake = (byNotice: boolean): void => { clearTimeout(timer); set.delete(wake); if (set.size === 0) this.waiters.delete(id); resolve(byNotice) }
        const timer = setTimeout(() => { wake(false) }, Math.min(Math.max(0, deadline - Date.now()), pollMs))
        set.add(wake)
      })
      if (!noticed) pollMs = Math.min(pollMs * 2, this.c.options.waitPollCapMs)
      view = await this.get(id)
    }
    return view
  }

  async list (filter: ListFilter = {}): Promise<TaskRecord[]> {
    const out: TaskRecord[] = []
    const limit = filter.limit ?? 100
    for await (const [, record] of this.c.store.tasks.entries()) {
      if (filter.capability !== undefined && record.task.capability !== filter.capability) continue
      if (filter.parent !== undefined && record.task.parent !== filter.parent) continue
      if (filter.state !== undefined && stateOf(record) !== filter.state) continue
      out.push(record)
    }
    out.sort((a, b) => b.task.createdAt - a.task.createdAt)
    return out.slice(0, limit)
  }

  /** Dead tasks this node knows of whose entry was not dropped, newest first. */
  async deadLetters (): Promise<TaskRecord[]> {
    const out: TaskRecord[] = []
    for await (const [id] of this.c.store.deadLetters.entries()) {
      const { record } = await this.c.replica.get(id)
      if (record?.final?.state === 'dead' && (record.droppedGeneration ?? -1) < record.generation) out.push(record)
    }
    return out.sort((a, b) => (b.final?.at ?? 0) - (a.final?.at ?? 0))
  }

  async cancel (id: string): Promise<TaskView> {
    const view = await this.get(id)
    if (view.record.final !== undefined) return view
    await this.c.leases.toMajority(this.c.replicaSets.for(id), { op: 'cancel', id })
    await this.c.gossip.publishNotice({ id, capability: view.record.task.capability, event: 'canceled', generation: view.record.generation })
    await this.applyNotice({ kind: 'notice', from: this.c.peerId.toString(), at: Date.now(), id, capability: view.record.task.capability, event: 'canceled', generation: view.record.generation })
    return this.get(id)
  }

  async redrive (id: string): Promise<TaskView> {
    const view = await this.get(id)
    await this.c.leases.toMajority(this.c.replicaSets.for(id), { op: 'redrive', id })
    const generation = view.record.generation + 1
    await this.c.gossip.publishNotice({ id, capability: view.record.task.capability, event: 'redriven', generation })
    await this.c.replica.put({ ...view.record, generation, updatedAt: Date.now() })
    await this.c.gossip.announceTask(view.record.task)
    return this.get(id)
  }

  async drop (id: string): Promise<void> {
    const view = await this.get(id)
    await this.c.leases.toMajority(this.c.replicaSets.for(id), { op: 'drop', id })
    await this.c.replica.put({ ...view.record, droppedGeneration: view.record.generation, updatedAt: Date.now() })
  }

  /** Folds a notice into this node's copy of the record, and wakes whoever waits on it. */
  async applyNotice (n: TaskNotice): Promise<void> {
    const local = await this.c.replica.get(n.id)
    if (local.record !== undefined) {
      const patch = noticeToRecord(local.record, n)
      const result: StoredResult | undefined = n.event === 'completed' && n.result !== undefined && n.claimId !== undefined && n.peer !== undefined
        ? { claimId: n.claimId, peer: n.peer, value: n.result, size: n.resultSize ?? byteLength(n.result), at: n.at }
        : undefined
      await this.c.replica.put(patch, result)
      this.stats.noticesApplied++
    }
    this.wake(n.id)
  }

  wake (id: string): void {
    for (const wake of this.waiters.get(id) ?? []) wake(true)
  }
}

function noticeToRecord (base: TaskRecord, n: TaskNotice): TaskRecord {
  const r: TaskRecord = { ...base, attempts: [], updatedAt: n.at, generation: Math.max(base.generation, n.generation) }
  const { final: _f, ...noFinal } = r
  const peer = n.peer ?? n.from
  const attempt = n.claimId === undefined ? [] : [{ claimId: n.claimId, generation: n.generation, peer, startedAt: n.at }]
  switch (n.event) {
    case 'running': return { ...noFinal, attempts: attempt.map(a => ({ ...a, outcome: 'running' as const })) }
    case 'failed': return { ...noFinal, attempts: attempt.map(a => ({ ...a, outcome: 'failed' as const, endedAt: n.at, error: n.error })) }
    case 'completed': return { ...r, attempts: attempt.map(a => ({ ...a, outcome: 'completed' as const, endedAt: n.at })), final: { state: 'completed', at: n.at, generation: n.generation, peer, claimId: n.claimId, resultSize: n.resultSize } }
    case 'canceled': return { ...r, final: { state: 'canceled', at: n.at, generation: n.generation, reason: 'canceled' } }
    case 'dead': return { ...r, final: { state: 'dead', at: n.at, generation: n.generation, reason: n.error } }
    case 'redriven': return noFinal
  }
}
