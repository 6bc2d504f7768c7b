import { createHash } from 'node:crypto'
import { hasValidId, newRecord } from '../../protocols/task/index.js'
import { pullTasks } from './pull.js'
import { PullPace } from './pull-pace.js'
import { inSpan } from '../tracing.js'
import { eventLoopLag } from './event-loop-lag.js'
import { Repeater } from './repeater.js'
import { ClaimRetries } from './claim-retries.js'
import { OwnRuns } from './own-runs.js'
import { OfferBacklog } from './offer-backlog.js'
import type { ClaimRetry } from './claim-retries.js'
import type { TaskComponents } from './components.js'
import type { Executor } from './executor.js'
import type { HeldLease } from '../../protocols/lease/index.js'
import type { TaskAnnouncement, TaskNotice } from '../../protocols/gossip/index.js'
import type { OfferItem } from '../../protocols/records/index.js'
import type { Placement, Task } from '../../protocols/task/index.js'
import type { Slot } from '../runtime/runtime.js'
import type { Logger } from '@libp2p/interface'

export { claimRetryFloorMs } from './claim-retries.js'
export type { ClaimRetry } from './claim-retries.js'

export interface ClaimerStats {
  announcementsSeen: number
  /** pull rounds, those skipped for want of a free slot included */
  pulls: number
  pulledTasks: number
  /** pulls brought forward by a freed slot while the last pull left claimable tasks behind (pullAgainMs) */
  pullsAgain: number
  claimAttempts: number
  claimsWon: number
  /** acquire attempts refused because another peer held the lease: the contention figure */
  claimsDenied: number
  claimsUnavailable: number
  /** claims not made because this node's event loop lagged past claimLagLimitMs */
  claimsDeferred: number
  /** claims not made because this node's last claim of the task failed a moment ago (claimRetryBaseMs) */
  claimsBackedOff: number
  /** tasks offered straight to this node, those it took at once, and those it queued while busy */
  offersReceived: number
  offersTaken: number
  offersQueued: number
  /** queued offers let go for an older task's, the queue full (taken oldest task first, it keeps the oldest) */
  offersLetGo: number
  /** offered tasks refused as forged (an id that does not hash its content) */
  offersRefused: number
  /** tasks submitted here while every slot was busy, leased with their store to run here as slots free (LeasedAhead) */
  claimedAhead: number
}

/**
 * Decides when this node claims a task. Capable peers with a free slot rank themselves by their
 * XOR distance to a key of the task, as Kademlia ranks peers for a key (one hash per task); the first claims at once, each later rank
 * waits claimStaggerMs more and claims only if the task still looks unclaimed. Tasks come from
 * announcements and, because gossip drops messages, from pulling peers' claimable lists.
 */
export class Claimer {
  readonly stats: ClaimerStats = { announcementsSeen: 0, pulls: 0, pulledTasks: 0, pullsAgain: 0, claimAttempts: 0, claimsWon: 0, claimsDenied: 0, claimsUnavailable: 0, claimsDeferred: 0, claimsBackedOff: 0, offersReceived: 0, offersTaken: 0, offersQueued: 0, offersLetGo: 0, offersRefused: 0, claimedAhead: 0 }
  private readonly c: TaskComponents
  private readonly executor: Executor
  private readonly log: Logger
  private readonly scheduled = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly inflight = new Map<string, Promise<void>>()
  private readonly considering = new Set<string>()
  /** offered while every slot was busy: claimed, oldest first, as slots free up */
  private readonly backlog = new OfferBacklog(() => this.c.options.offerQueueLimit)
  /** tasks leased with their store, submitted or handed here: see OwnRuns */
  readonly ownRuns: OwnRuns
  /** tasks whose last claims here failed: how many in a row, and when this node may claim again */
  private readonly retries: ClaimRetries
  private readonly pullLoop: Repeater
  private readonly pace: PullPace
  /** announcements and offers seen so far: one seen while a pull is under way keeps the next one near */
  private movements = 0
  private running = false
  private readonly onTask = (evt: CustomEvent<TaskAnnouncement>): void => {
    this.stats.announcementsSeen++
    this.tasksMoving()
    this.consider(evt.detail.task, evt.detail.placement).catch(err => { this.log('announcement of %s not considered: %s', evt.detail.task.id, err.message) })
  }

  /** Someone else started or finished it: a lower rank need not try. */
  private readonly onNotice = (evt: CustomEvent<TaskNotice>): void => {
    const timer = this.scheduled.get(evt.detail.id)
    if (timer === undefined || evt.detail.event === 'failed' || evt.detail.event === 'redriven' || evt.detail.event === 'submitted') return
    clearTimeout(timer)
    this.scheduled.delete(evt.detail.id)
  }

  constructor (components: TaskComponents, executor: Executor) {
    this.c = components
    this.executor = executor
    executor.onSlotFree = capability => { this.slotFreed(capability) }
    this.log = components.logger('agentmesh:claimer')
    this.retries = new ClaimRetries(components.options)
    this.ownRuns = new OwnRuns(components, {
      running: () => this.running,
      lagging: () => this.lagging(),
      track: (id, work) => { this.track(id, work) },
      won: async (task, generation, lease, slot, claimMs) => { await this.won(task, generation, lease, slot, claimMs) },
      drainBacklog: () => { this.drainBacklog() }
    }, this.stats, this.log)
    this.pace = new PullPace(components.options)
    this.pullLoop = new Repeater('pull', () => this.pace.nextMs(this.lagging()), async () => this.pull(), this.log)
  }

  private slotFreed (capability: string): void {
    this.drainBacklog()
    this.pullSoon(capability)
  }

  /** A slot of `capability` is free again: the next pull is soon while the last left its tasks behind. */
  private pullSoon (capability: string): void {
    // a lagging node defers its claims: pulling sooner would only find more to defer
    if (!this.lagging() && this.pace.slotFreed(capability)) this.pullLoop.hurry()
  }

  /** Tasks are moving: pulls go back to every pullIntervalMs, the next one included. */
  private tasksMoving (): void {
    this.movements++
    if (!this.pace.moving()) return
    this.pullLoop.hurry()
  }

  start (): void {
    this.running = true
    this.pace.reset()
    eventLoopLag.acquire(this.c.options.lagSampleMs)
    this.c.gossip.addEventListener('task', this.onTask)
    this.c.gossip.addEventListener('notice', this.onNotice)
    for (const cap of this.c.runtime.capabilities()) this.c.gossip.subscribeCapability(cap.name)
    this.pullLoop.start()
  }

  /**
   * Stops claiming and waits (up to `graceMs`) for claims in flight, whose agents the executor has
   * aborted, and for leases asked with a task's store (OwnRuns): one granted now is given back.
   */
  async stop (graceMs = 2_000): Promise<void> {
    if (this.running) eventLoopLag.release()
    this.running = false
    this.c.gossip.removeEventListener('task', this.onTask)
    this.c.gossip.removeEventListener('notice', this.onNotice)
    for (const timer of this.scheduled.values()) clearTimeout(timer)
    this.scheduled.clear()
    this.backlog.clear()
    this.ownRuns.letGoAll()
    this.retries.clear()
    const deadline = Date.now() + graceMs
    const pulls = this.pullLoop.stop()
    // first: a lease that comes now becomes a run, given back, which the next wait includes
    await this.ownRuns.settled(graceMs)
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      Promise.allSettled([...this.inflight.values(), pulls]),
      new Promise(resolve => { timer = setTimeout(resolve, Math.max(0, deadline - Date.now())) })
    ])
    clearTimeout(timer)
  }

  /**
   * Schedules a claim of `task` by this node's rank, if it can run it and it looks unclaimed. Only
   * the first `claimRanks` peers (among those with a free slot) try, whether the task came by
   * announcement or by pull: with many capable peers a claim can be seen later than every stagger,
   * and all of them racing is a storm of refused claims that feeds on itself under load. Answers
   * whether this node is on the task: it scheduled a claim of it now or before, or has one under way.
   */
  async consider (task: Task, placement: Placement): Promise<boolean> {
    if (!this.running || !this.c.runtime.canRun(task.capability)) return false
    // a consider under way has not decided yet: it answers for itself
    if (this.considering.has(task.id)) return false
    if (this.scheduled.has(task.id) || this.inflight.has(task.id) || this.backlog.has(task.id)) return true
    if (this.retries.waiting(task.id)) {
      this.stats.claimsBackedOff++
      return false
    }
    // ranked before any read: the store work of every peer for every task grew with the mesh
    const rank = this.rank(task)
    const ranks = this.c.options.claimRanks
    if (rank >= Math.max(ranks, this.c.options.keepRanks)) return false
    // marked before the first await: two announcements of one task must not both schedule it
    this.considering.add(task.id)
    try {
      const local = await this.c.replica.get(task.id)
      // kept, so that a later claim here finds it; peers past keepRanks ask the placement
      if (local.record === undefined) await this.c.replica.put(newRecord(task, placement))
      if (local.record?.final !== undefined || rank >= ranks || !this.running) return false
      const timer = setTimeout(() => {
        this.scheduled.delete(task.id)
        this.startClaim(task, placement)
      }, rank * this.c.options.claimStaggerMs)
      this.scheduled.set(task.id, timer)
      return true
    } finally {
      this.considering.delete(task.id)
    }
  }

  /** This node's place among live peers that offer the capability and have a free slot. */
  rank (task: Task): number {
    return Math.max(0, this.order(task).indexOf(this.c.peerId.toString()))
  }

  /**
   * Live peers that offer the task's capability and have a free slot (this node whenever it offers
   * it), in the task's claim order: the rendezvous order every peer computes alike.
   */
  order (task: Pick<Task, 'id' | 'capability'>): string[] {
    const candidates = this.c.presence.live()
      .filter(p => p.self ? this.c.runtime.refusesWork?.() !== true : (p.freeSlots[task.capability] ?? 0) > 0)
      .filter(p => p.capabilities.some(cap => cap.name === task.capability))
      .map(p => p.peerId)
    return this.c.replicaSets.order(claimKey(task.id), candidates)
  }

  /**
   * Whether an offer of `task` to be queued would be kept now (room, or a younger task to let go):
   * this node able to run it, and not claiming, queuing or backing off it already.
   */
  wouldQueue (task: Task): boolean {
    if (!this.running || !this.c.runtime.canRun(task.capability) || this.c.runtime.refusesWork?.() === true) return false
    if (this.handling(task.id) || this.retries.waiting(task.id)) return false
    return this.backlog.wouldTake(task)
  }

  /** Whether this node claims, runs, weighs or queues `id` already. */
  private handling (id: string): boolean {
    return this.scheduled.has(id) || this.inflight.has(id) || this.considering.has(id) || this.backlog.has(id)
  }

  /** Whether `id` waits in this node's queue of offers. */
  queued (id: string): boolean {
    return this.backlog.has(id)
  }

  /**
   * Tasks offered to this node by their submitter: each is claimed now if a slot is free; if not,
   * one marked `queue` waits in a bounded backlog for the next free slot, and the others are
   * declined (the submitter asks the next peer). Answers the ids taken.
   */
  takeOffers (items: OfferItem[]): string[] {
    const taken: string[] = []
    this.tasksMoving()
    for (const { task, placement, queue } of items) {
      this.stats.offersReceived++
      if (!hasValidId(task)) {
        this.stats.offersRefused++
        continue
      }
      // a node that refuses work (its store failed a write) queues none either: it would never run them
      if (!this.running || !this.c.runtime.canRun(task.capability) || this.c.runtime.refusesWork?.() === true) continue
      const id = task.id
      if (this.handling(id)) {
        taken.push(id)
        continue
      }
      // a re-offered task whose claims here failed lately waits out its back-off, as an announced
      // one does: declined, so the offer goes on to the next peer
      if (this.retries.waiting(id)) {
        this.stats.claimsBackedOff++
        continue
      }
      const lagging = this.lagging()
      const slot = lagging ? undefined : this.c.runtime.reserve(task.capability)
      if (slot !== undefined) {
        this.stats.offersTaken++
        this.startClaim(task, placement, slot)
        taken.push(id)
      } else if (queue === true) {
        const { queued, letGo } = this.backlog.add({ task, placement })
        if (!queued) continue
        this.stats.offersQueued++
        if (letGo !== undefined) this.stats.offersLetGo++
        taken.push(id)
      }
    }
    if (taken.length > 0) this.c.presence.slotsChanged()
    return taken
  }

  private startClaim (task: Task, placement: Placement, slot?: Slot): void {
    this.track(task.id, this.claim(task, placement, slot))
  }

  /** A claim or run in flight here: one per task, and a slot it frees goes to the backlog. */
  private track (id: string, work: Promise<void>): void {
    const tracked: Promise<void> = work.finally(() => {
      if (this.inflight.get(id) === tracked) this.inflight.delete(id)
      this.drainBacklog()
    })
    this.inflight.set(id, tracked)
  }

  /** A lease won, by a claim or with a submit: counted, told, and run in its slot. */
  private async won (task: Task, generation: number, lease: HeldLease, slot: Slot, claimMs: number): Promise<void> {
    this.stats.claimsWon++
    this.retries.delete(task.id)
    this.c.events.safeDispatchEvent('claimed', { detail: { id: task.id, capability: task.capability, generation, claimId: lease.claimId, attempt: lease.attempt, claimMs } })
    await this.executor.run(task, lease, slot)
  }

  /**
   * Whether this node puts off new claims: its event loop lags past claimLagLimitMs, so it might not
   * renew a lease in time. A node that runs and claims nothing (no claim in flight, no slot taken)
   * still takes one while the lag is well within what a lease survives (half the time from its
   * renewal to its expiry, which a renewal's own round trip shortens): waiting does not lower lag
   * this node does not cause, and a mesh whose every node lags (many nodes on few cores) must not stop.
   */
  private lagging (): boolean {
    const lag = eventLoopLag.currentMs()
    if (lag <= this.c.options.claimLagLimitMs) return false
    return this.inflight.size > 0 || this.c.runtime.busySlots() > 0 || 2 * lag >= this.c.options.leaseMs * (1 - this.c.options.renewFraction)
  }

  /** Runs tasks leased ahead, then claims queued offers, while slots are free, oldest first. */
  private drainBacklog (): void {
    if (this.running) this.ownRuns.drain()
    // sorted only when a slot is free to take one (this runs after every claim and run)
    if (this.backlog.size === 0 || !Object.values(this.c.runtime.freeSlots()).some(n => n > 0)) return
    for (const { task, placement } of this.backlog.oldestFirst()) {
      const id = task.id
      if (!this.running) return
      if (this.lagging()) {
        this.stats.claimsDeferred++
        return
      }
      // claimed meanwhile by an announcement or a pull: one claim per task on a node
      if (this.inflight.has(id) || this.scheduled.has(id)) {
        this.backlog.delete(id)
        continue
      }
      const slot = this.c.runtime.reserve(task.capability)
      if (slot === undefined) continue
      this.backlog.delete(id)
      this.startClaim(task, placement, slot)
    }
  }

  private async claim (task: Task, placement: Placement, reserved?: Slot): Promise<void> {
    let slot = reserved
    try {
      if (!this.running) return
      // an overloaded node would grant itself leases it cannot renew: under a burst that turned into
      // expired attempts, re-runs and dead tasks
      // an offer or the backlog checked just before it reserved the slot, which now counts as busy
      if (reserved === undefined && this.lagging()) {
        this.stats.claimsDeferred++
        return
      }
      const local = await this.c.replica.get(task.id)
      if (local.record?.final !== undefined) return
      // kept here: the executor reads its generation and journal
      if (local.record === undefined) await this.c.replica.put(newRecord(task, placement))
      slot ??= this.c.runtime.reserve(task.capability)
      // busy: no claim now; the pull path or a re-announcement brings the task back
      if (slot === undefined) return
      this.c.presence.slotsChanged()
      this.stats.claimAttempts++
      const asked = performance.now()
      const lease = await inSpan('agentmesh.claim', task.traceparent, { 'agentmesh.task': task.id, 'agentmesh.capability': task.capability }, async () => this.c.leases.acquire({ id: task.id, placement: local.record?.placement ?? placement }))
      const running = slot
      slot = undefined
      await this.won(task, Math.max(local.record?.generation ?? 0, lease.generation), lease, running, performance.now() - asked)
    } catch (err: any) {
      if (err.name === 'LeaseDeniedError' || err.name === 'QuorumUnavailableError') {
        if (err.name === 'LeaseDeniedError') this.stats.claimsDenied++
        else this.stats.claimsUnavailable++
        this.retries.failed(task.id)
      } else if (err.name === 'TaskFinishedError') this.retries.delete(task.id)
      else if (this.running) this.log.error('claim of %s failed: %s', task.id, err.stack ?? err.message)
    } finally {
      // a claim refused (a peer that ranked before it took the task) frees its slot as a run's end does
      if (slot !== undefined) {
        slot.release()
        this.pullSoon(task.capability)
      }
    }
  }

  /** When this node claims `id` again after failed claims, if it is waiting to. */
  retryOf (id: string): ClaimRetry | undefined {
    return this.retries.get(id)
  }

  /** The pull path: ask a few peers (and the local replica) for tasks they would lease now. */
  async pull (): Promise<void> {
    this.retries.forgetPast()
    // queued offers first: a drain skipped while the event loop lagged is retried here
    this.drainBacklog()
    const moved = this.movements
    this.stats.pulls++
    if (this.pace.begin()) this.stats.pullsAgain++
    const pulled = await pullTasks(this.c, this.stats, async (task, placement) => this.consider(task, placement))
    // backs off only pulls that asked and found nothing: a busy node's skipped pull (undefined) costs
    // no request, and its first pull once a slot frees must not be far off (the sweeper holds
    // re-announcements while no peer has a free slot); nor while offers wait in the backlog for a drain
    this.pace.ended(pulled, pulled?.found === 0 && this.movements === moved && this.backlog.size === 0)
    // a pull made outside the loop's rounds may make the loop's next one due sooner
    this.pullLoop.hurry()
  }
}

/** The claim order's key: not the replica key, so that the claimers are not the replicas. */
function claimKey (taskId: string): Buffer {
  return createHash('sha256').update(`claim/${taskId}`).digest()
}
