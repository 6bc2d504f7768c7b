import { makeTask, makeTaskWhere, newRecord, taskId } from '../../protocols/task/index.js'
import { SpanStatusCode } from '@opentelemetry/api'
import { startSpan, traceparentOf } from '../tracing.js'
import { acquireWithRecord } from './handoff.js'
import { keepCopy, mayBeUnstored, storeOnPlacement } from './placement-writes.js'
import { UNFINISHED_STATES, listDeadLetters, listTasks } from './listing.js'
import { InvalidTaskError, OverloadedError, TaskNotFoundError } from './errors.js'
import { findTask, isSettled, madeTask, mayBeRedriven } from './find-task.js'
import { checkSubmit, keyConflict, offeredNames, routedByModel, submitNow, unofferedWarningOf } from './submit-checks.js'
import { WakeList } from './wake-list.js'
import { submitMany } from './bulk-submit.js'
import { KeyCreations } from './key-creations.js'
import { NoticeApplier } from './notices.js'
import { cancelTask, dropTask, forcePlacement, redriveTask, signalTask } from './task-actions.js'
import { BULK_CHUNK_BYTES, BULK_CHUNK_RECORDS, MAX_BULK_TASKS } from './bulk-limits.js'
import type { ActionContext } from './task-actions.js'
import type { TaskComponents } from './components.js'
import type { ListFilter } from './listing.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { HeldLease } from '../../protocols/lease/index.js'
import type { OwnRuns } from './own-runs.js'
import type { Handoff } from './handoff.js'
import type { Mover } from './mover.js'
import type { Offerer } from './offerer.js'
import type { ProgressHub } from './progress.js'
import type { Placement, Task } from '../../protocols/task/index.js'
import type { TaskRecord } from '../../protocols/task/index.js'
import type { FindOptions, TaskView } from './find-task.js'
import type { SubmitRequest } from './submit-checks.js'
import type { Logger } from '@libp2p/interface'

export type { SubmitRequest } from './submit-checks.js'

export interface SubmitAnswer {
  id: string
  /** false when the idempotency key named an existing task */
  created: boolean
  warning?: string
}

/** One entry of a bulk submit's answer, in request order: the task, or why it was not acknowledged. */
/** A task of a bulk submit: made (or found), or refused; a refused one whose store fell short names its id, as a member that stored it may still run it */
export type SubmitManyEntry = SubmitAnswer | { error: Error, id?: string }

// in their own module, so that the CLI reads them without loading the task layer
export { MAX_BULK_TASKS, BULK_CHUNK_BYTES, BULK_CHUNK_RECORDS }

export type { TaskView } from './find-task.js'
export type { ListFilter } from './listing.js'

/**
 * Submitting, finding, waiting for and canceling tasks, from any node. The node's own store holds
 * what it knows of each task; what it lacks it asks the task's replica set for.
 */
export class TaskService {
  /**
   * waitPolls: reads of one placement member by a wait that heard no notice; overloaded: submits
   * refused past maxUnfinishedTasks or maxSubmitsInFlight (counted once a request; overloadedInFlight
   * the second alone); waitsAbandoned: waits ended early, their client gone or the node stopping
   */
  readonly stats = { submitted: 0, noticesApplied: 0, waitPolls: 0, overloaded: 0, overloadedInFlight: 0, waitsAbandoned: 0 }
  /** submit requests being stored on their placements now (see maxSubmitsInFlight) */
  private submitsInFlight = 0
  private readonly c: TaskComponents
  private readonly log: Logger
  private readonly waits = new WakeList()
  /** idempotency keys whose task a submit here is creating: a second submit of one waits for it */
  private readonly keys = new KeyCreations()
  private readonly notices: NoticeApplier
  /** set by the task layer: moves placements (blocked tasks, --force-placement) */
  mover?: Mover
  /** set by the task layer: hands stored tasks to the peers that should run them */
  offerer?: Offerer
  /** set by the task layer: keeps the streamed progress of tasks submitted here */
  progress?: ProgressHub
  /** set by the task layer: hands tasks submitted here to a member that runs them */
  handoff?: Pick<Handoff, 'taker' | 'give'>
  /** set by the task layer: runs tasks submitted here that this node should run itself */
  ownRuns?: Pick<OwnRuns, 'reserveOwn' | 'wouldRunOwn' | 'reserveAhead'>
  /** aborts this node's run of a task (set by the task layer: the executor's cancel) */
  stopRun?: (id: string) => void
  private readonly onNotice = (evt: CustomEvent<TaskNotice>): void => {
    this.applyNotice(evt.detail)
  }

  constructor (components: TaskComponents) {
    this.c = components
    this.log = components.logger('agentmesh:tasks')
    this.notices = new NoticeApplier(components, this.log, id => { this.wake(id) })
  }

  start (): void {
    this.c.gossip.addEventListener('notice', this.onNotice)
  }

  stop (): void {
    this.c.gossip.removeEventListener('notice', this.onNotice)
    this.waits.clear()
  }

  async submit (given: SubmitRequest): Promise<SubmitAnswer> {
    const req = routedByModel(this.c, given)
    const checked = checkSubmit(this.c, req)
    if (req.idempotencyKey === undefined) return await this.create(req, checked)
    const id = taskId({ capability: req.capability, input: req.input, submitter: this.c.peerId.toString(), idempotencyKey: req.idempotencyKey })
    const claim = await this.keys.claim(id)
    if ('answer' in claim) {
      // made by a submit of the same key at the same time: with other options, refused all the same
      const made = await madeTask(this.c, id)
      const conflict = made === undefined ? undefined : keyConflict(req, made)
      if (conflict !== undefined) throw conflict
      return { ...claim.answer, created: false }
    }
    const mine = claim.owned
    try {
      const found = await this.findOfKey(req, id)
      const answer = found !== undefined ? await this.confirmStored(found) : await this.create(req, checked)
      mine.settle(answer)
      return answer
    } catch (err) {
      mine.fail(err)
      throw err
    }
  }

  /** The task of `req`'s idempotency key, if one is found; IdempotencyConflictError when it was made with other options. */
  private async findOfKey (req: SubmitRequest, id: string): Promise<TaskView | undefined> {
    const found = await this.findKeyed(id)
    const conflict = found === undefined ? undefined : keyConflict(req, found.record.task)
    if (conflict !== undefined) throw conflict
    return found
  }

  /**
   * A keyed task's copy, if one is found: the members' answers are waited for, as one may hold the
   * only copy (an earlier submit that reached a minority), but not a silent member's (see
   * silentPeerMs). Without a majority's word the submit goes on: its store round is refused, and
   * leaves the copy a retry pins.
   */
  private async findKeyed (id: string): Promise<TaskView | undefined> {
    return await this.find(id, { absentByMajority: true }).catch((err: any) => {
      if (err?.name === 'QuorumUnavailableError') return undefined
      throw err
    })
  }

  /** Makes, stores and hands on a checked task. */
  private async create (req: SubmitRequest, checked: { maxAttempts: number, timeoutMs: number }): Promise<SubmitAnswer> {
    return await this.storing([req], async () => {
      this.admitUnfinished([req])
      return await this.createAdmitted(req, checked)
    })
  }

  private async createAdmitted (req: SubmitRequest, { maxAttempts, timeoutMs }: { maxAttempts: number, timeoutMs: number }): Promise<SubmitAnswer> {
    const o = this.c.options
    const submitter = this.c.peerId.toString()
    const now = submitNow(this.c)
    const span = startSpan('agentmesh.submit', req.traceparent, { 'agentmesh.capability': req.capability })
    const fields = {
      traceparent: traceparentOf(span),
      capability: req.capability,
      input: req.input,
      submitter,
      idempotencyKey: req.idempotencyKey,
      maxAttempts,
      timeoutMs,
      deadline: now + (req.deadlineMs ?? o.defaultDeadlineMs),
      parent: req.parent,
      now
    }
    // a task this node runs is best placed with it among the members (see ownPlacementTries)
    const runsHere = req.idempotencyKey === undefined && o.ownPlacementTries > 1 && this.ownRuns?.wouldRunOwn(req.capability) === true
    const task = runsHere ? makeTaskWhere(fields, this.c.membership.includesSelf(), o.ownPlacementTries) : makeTask(fields)
    if (req.made !== undefined) {
      try {
        await req.made(task.id)
      } catch (err: any) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: String(err?.message) })
        span.end()
        throw err
      }
    }
    // before anyone can run it: its first progress events are kept for a listener to come
    this.progress?.track(task.id)
    span.setAttribute('agentmesh.task', task.id)
    const record = newRecord(task, this.c.membership.choose(task.id), now)
    // a task this node will run itself is claimed with the store: one request per member, not two;
    // else a member with a free slot is handed it to do the same
    const own = this.ownRuns?.reserveOwn(task, record.placement)
    const prerun = own?.runBeforeClaim === undefined ? undefined : await own.runBeforeClaim()
    const asked = performance.now()
    let lease: HeldLease | undefined
    let handed = false
    const taker = own === undefined ? this.handoff?.taker(record) : undefined
    // every member busy: leased here with the store all the same, to run when a slot frees
    const place = own ?? (taker === undefined ? this.ownRuns?.reserveAhead(task, record.placement) : undefined)
    try {
      if (place !== undefined) lease = await acquireWithRecord(this.c, this.log, record, prerun)
      else if (taker !== undefined) {
        // kept first: the member may run the task and tell this node its outcome before it answers,
        // and a notice about a task this node does not hold wakes nobody
        await keepCopy(this.c, record)
        handed = await this.handoff?.give(taker, record) ?? false
      }
      if (!handed && lease === undefined) await this.storeOnPlacement(record, taker !== undefined)
    } catch (err: any) {
      place?.cancel()
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err?.message) })
      throw err
    } finally {
      span.end()
    }
    this.stats.submitted++
    this.c.events.safeDispatchEvent('submitted', { detail: { id: task.id, capability: task.capability } })
    if (place !== undefined && lease !== undefined) place.run(lease, performance.now() - asked)
    else if (!handed) {
      place?.cancel()
      this.announce(task, record.placement)
    }
    return { id: task.id, created: true, ...unofferedWarningOf(this.c, task.capability) }
  }

  /**
   * A key's task found again. Found is not acknowledged: a submit refused for want of a majority
   * may have left a copy here or on a minority of its placement, and answering `200` to its retry
   * told the client a task existed that no majority held, nor would run. So an unfinished one is
   * stored on its pinned placement again (members merge it with what they hold): QuorumUnavailableError
   * again, or it now exists, and goes to a peer that runs it.
   */
  private async confirmStored ({ record }: TaskView): Promise<SubmitAnswer> {
    if (mayBeUnstored(record)) {
      await this.storeOnPlacement(record)
      if (record.attempts.length === 0) this.announce(record.task, record.placement)
    }
    // a retry after a lost answer learns, as the first submit did, that nobody will run it yet
    return { id: record.task.id, created: false, ...(record.final === undefined ? unofferedWarningOf(this.c, record.task.capability) : {}) }
  }

  /** A task its placement stored goes to a peer that runs it: offered directly, else gossiped. */
  private announce (task: Task, placement: Placement): void {
    if (this.offerer !== undefined) this.offerer.offer(task, placement)
    else void this.c.gossip.announceTask(task, placement)
  }

  /**
   * Submits many tasks with one `put-many` request per placement member (per chunk of about
   * BULK_CHUNK_BYTES), not one request per task and member. Each task is checked like `submit`,
   * and acknowledged only once a majority of ITS placement, of its full size, stored it; a task
   * that fails either gets its own error in its entry, and the others go on. Entries are in
   * request order. A repeated idempotency key answers `created: false`, as `submit` does.
   */
  async submitMany (given: SubmitRequest[]): Promise<SubmitManyEntry[]> {
    // the capabilities offered, read once for the whole bulk (presence does not change within the map)
    let offered: Set<string> | undefined
    const reqs = given.map(req => routedByModel(this.c, req, () => (offered ??= offeredNames(this.c))))
    return await this.storing(reqs, async () => await submitMany({
      c: this.c,
      keys: this.keys,
      stats: this.stats,
      find: async id => this.findKeyed(id),
      admit: reqs => { this.admitUnfinished(reqs) },
      announce: (task, placement) => { this.announce(task, placement) },
      track: id => { this.progress?.track(id) }
    }, reqs))
  }

  /**
   * Runs one submit request (one task, or a bulk) counted in submitsInFlight; refused past
   * maxSubmitsInFlight of them at once, unless it holds only subtasks.
   */
  private async storing<T> (reqs: SubmitRequest[], store: () => Promise<T>): Promise<T> {
    if (this.submitsInFlight >= this.c.options.maxSubmitsInFlight && reqs.some(req => req.parent === undefined)) {
      this.stats.overloaded++
      this.stats.overloadedInFlight++
      throw new OverloadedError(`this node is storing ${this.submitsInFlight} submits at once, and takes at most ${this.c.options.maxSubmitsInFlight} (maxSubmitsInFlight): retry later`, this.c.options.retryAfterMs)
    }
    this.submitsInFlight++
    try {
      return await store()
    } finally {
      this.submitsInFlight--
    }
  }

  /**
   * Refuses new tasks while this node is a member of the placements of maxUnfinishedTasks
   * unfinished ones. Subtasks pass: refusing them would fail their parents' attempts, and a
   * parent's backlog drains through its children.
   */
  private admitUnfinished (reqs: SubmitRequest[]): void {
    const fresh = reqs.filter(req => req.parent === undefined).length
    const held = this.c.replica.activeHere
    const max = this.c.options.maxUnfinishedTasks
    if (fresh === 0 || held + fresh <= max) return
    // no retry could ever be let in: the client's error, not a Retry-After
    if (fresh > max) throw new InvalidTaskError(`${fresh} new tasks in one request, more than this node holds unfinished at once (maxUnfinishedTasks ${max}): send at most ${max} a request`)
    this.stats.overloaded++
    throw new OverloadedError(`this node is a member of the placements of ${held} unfinished tasks, and takes at most ${max} (maxUnfinishedTasks): ${fresh === 1 ? 'a new one' : `${fresh} new ones`} would pass it, retry later`, this.c.options.retryAfterMs)
  }

  /** Stores a new record on its placement (see placement-writes.ts); `kept`: a copy kept here already. */
  async storeOnPlacement (record: TaskRecord, kept = false): Promise<void> {
    await storeOnPlacement(this.c, record, kept)
  }

  /** What this node knows of a task (see findTask): its certified copy, else its placement's answers. */
  async find (id: string, options: FindOptions = {}): Promise<TaskView | undefined> {
    return findTask(this.c, id, options)
  }

  async get (id: string): Promise<TaskView> {
    return this.watched(id, false)
  }

  /** `get`, and with `watch` a member is asked to tell this node when the task is final. */
  private async watched (id: string, watch: boolean): Promise<TaskView> {
    const view = await this.find(id, { watch, absentByMajority: true })
    if (view === undefined) throw new TaskNotFoundError(id)
    return view
  }

  /**
   * The task once settled, or as it stands after `waitMs`, once `gone` aborts (the client went
   * away, or the API stops) or once the service stops while it waits: a wait polled on for nobody
   * until its deadline. It asks the placement now and then, in case a notice was lost.
   */
  async waitFor (id: string, waitMs: number, gone?: AbortSignal): Promise<TaskView> {
    const deadline = Date.now() + waitMs
    // armed before each read: a wake that comes while the read is on its way is kept, not lost
    let alarm = this.waits.arm(id)
    const stops = this.waits.stops
    try {
      // a task this node submitted or is a member for is not asked of the placement until a notice or
      // the first poll: right after a submit the answer is known to be "not yet"
      const local = await this.c.replica.get(id)
      // a copy kept elsewhere (a node that ran, or was offered, the task) hears no notice: it asks a member to tell it
      const told = local.record !== undefined && !mayBeRedriven(local.record) && (local.record.task.submitter === this.c.peerId.toString() || this.c.replica.isMember(local.record))
      let view = told && waitMs > 0 ? { record: local.record as TaskRecord, result: local.result } : await this.watched(id, waitMs > 0)
      // each poll asks the placement: with many waits pending, a fixed 1 s poll was most of the load
      let pollMs = this.c.options.waitPollBaseMs
      let followMs = this.c.options.resultFollowMs
      let polls = 0
      while (!isSettled(view) && Date.now() < deadline) {
        // final without its result here: the holder's commit is on its way, so asked again soon, not
        // after the poll's backoff (a wait of a second ended with the state and no result); doubling
        // up to the poll's own, should the result stay out of reach
        const finalHere = view.record?.final !== undefined
        const nextMs = finalHere ? Math.min(pollMs, followMs) : pollMs
        if (finalHere) followMs *= 2
        const rang = await alarm.ring(Math.min(Math.max(0, deadline - Date.now()), nextMs), gone)
        alarm = this.waits.arm(id)
        if (this.waits.stops !== stops || gone?.aborted === true) {
          this.stats.waitsAbandoned++
          break
        }
        if (rang === 'woken') {
          view = await this.get(id)
          continue
        }
        pollMs = Math.min(pollMs * 2, this.c.options.waitPollCapMs)
        this.stats.waitPolls++
        // one member a poll while the task runs; a final copy without its result asks them all, since
        // a request starts again at the first member and that one may be down for good
        view = await this.find(id, view.record?.final !== undefined ? { watch: true } : { oneMember: polls++, watch: true }) ?? view
      }
      return view
    } finally {
      alarm.cancel()
    }
  }

  async list (filter: ListFilter = {}): Promise<TaskRecord[]> {
    // a snapshot: the index changes while the listing reads
    const among = filter.parent !== undefined ? new Set(this.c.replica.childrenOf(filter.parent)) : UNFINISHED_STATES.has(filter.state) ? new Set(this.c.replica.active) : undefined
    return listTasks(this.c.store, filter, record => this.mover?.blockedReason(record) !== undefined, among)
  }

  /** Dead tasks this node knows of whose entry was not dropped, newest first, at most `limit`. */
  async deadLetters (limit?: number): Promise<TaskRecord[]> {
    return listDeadLetters(this.c.store, async id => (await this.c.replica.get(id)).record, limit)
  }

  /** An operator's move of a blocked task onto live peers (see task-actions.ts). */
  async forcePlacement (id: string): Promise<{ id: string, placement: Placement, warning: string }> {
    return forcePlacement(this.actions(), id)
  }

  async cancel (id: string): Promise<TaskView> {
    return cancelTask(this.actions(), id)
  }

  async signal (id: string, name: string, data: unknown): Promise<TaskView> {
    return signalTask(this.actions(), id, name, data)
  }

  async redrive (id: string): Promise<TaskView> {
    return redriveTask(this.actions(), id)
  }

  async drop (id: string): Promise<void> {
    await dropTask(this.actions(), id)
  }

  private actions (): ActionContext {
    return { c: this.c, get: async id => this.get(id), announce: (task, placement) => { this.announce(task, placement) }, wake: id => { this.wake(id) }, mover: this.mover, stopRun: this.stopRun, settle: async (id, waitMs) => this.waitFor(id, waitMs) }
  }

  /**
   * A notice is a hint, never state (see NoticeApplier). `signer`: the peer that sent it over a
   * connection that proves who it is, whose own vote in its certificate is taken on its word
   */
  applyNotice (n: TaskNotice, signer?: string): void {
    this.stats.noticesApplied++
    this.notices.apply(n, signer)
  }

  wake (id: string): void {
    this.waits.wake(id)
  }
}
