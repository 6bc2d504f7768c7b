import { LeasedAhead } from './leased-ahead.js'
import { runBeforeClaim } from './prerun.js'
import type { AheadTicket } from './leased-ahead.js'
import type { ClaimerStats } from './claimer.js'
import type { TaskComponents } from './components.js'
import type { HeldLease, Prerun } from '../../protocols/lease/index.js'
import type { Placement, Task } from '../../protocols/task/index.js'
import type { Slot } from '../runtime/runtime.js'
import type { Logger } from '@libp2p/interface'

/** What runs of leases taken with a task's store need of the claimer. */
export interface ClaimerHooks {
  running: () => boolean
  lagging: () => boolean
  /** a run in flight here, one per task: the claimer's stop waits for it, and a slot it frees goes on */
  track: (id: string, work: Promise<void>) => void
  /** a lease won: counted, told, and run in its slot */
  won: (task: Task, generation: number, lease: HeldLease, slot: Slot, claimMs: number) => Promise<void>
  drainBacklog: () => void
}

/** A place taken for a task before its lease is asked for: run under the lease, or given back. */
export interface Reservation {
  /** runs the task under `lease`, at once or as a slot frees; never throws */
  run: (lease: HeldLease, claimMs: number) => void
  /** the lease was not granted: the place goes back */
  cancel: () => void
  /** runs a pure agent's task now, before the claim, which then carries its vote (runBeforeClaim); none for a place that waits for a slot */
  runBeforeClaim?: () => Promise<Prerun | undefined>
}

/**
 * Tasks this node submits, or is handed, and leases with their store (one request per member,
 * where storing and claiming later is two): at once when a slot is free (reserveOwn), or to wait
 * for the next slot when every one is busy and no other peer has one free (reserveAhead,
 * LeasedAhead). A place reserved before the lease is asked for stays outstanding until
 * it is run or given back, and the claimer's stop waits for those: a lease granted while the
 * node stops is then given back before the node's streams close, not left to lapse.
 */
export class OwnRuns {
  private readonly ahead: LeasedAhead
  private readonly outstanding = new Set<object>()
  private settledOne?: () => void

  constructor (private readonly c: TaskComponents, private readonly claimer: ClaimerHooks, private readonly stats: ClaimerStats, private readonly log: Logger) {
    this.ahead = new LeasedAhead(c.runtime, c.options.claimAheadPerSlot)
    // a slot given back unrun (a declined handoff, a claim that fell short) is a waiting task's too
    c.runtime.onSlotReleased = () => {
      if (this.claimer.running() && this.ahead.size > 0) queueMicrotask(() => { if (this.claimer.running()) this.ahead.drain() })
    }
  }

  /** Whether a task of `capability` submitted here now would run here, were this node a member: see reserveOwn. */
  wouldRunOwn (capability: string): boolean {
    return this.claimer.running() && this.c.runtime.canRun(capability) && !this.claimer.lagging() && (this.c.runtime.freeSlots()[capability] ?? 0) > 0
  }

  /**
   * A slot for a task this node submits and runs itself: it offers the capability, has a free slot
   * and no lag, and is a member of the placement (the offer would come to it first). The submit
   * then takes the lease with the store, and the reservation runs it.
   */
  reserveOwn (task: Task, placement: Placement): Reservation | undefined {
    if (!this.mayLease(task, placement)) return undefined
    const slot = this.c.runtime.reserve(task.capability)
    if (slot === undefined) return undefined
    this.c.presence.slotsChanged()
    const done = this.open()
    const held: Slot = { agent: slot.agent, release: () => { done(); slot.release() } }
    return {
      run: (lease, claimMs) => { this.runOwn(task, lease, held, claimMs) },
      cancel: () => { held.release() },
      // results a notice carries inline: one request carries the record and the result
      runBeforeClaim: async () => runBeforeClaim(this.c.runtime, slot.agent, task, { maxMs: this.c.options.prerunMaxMs, maxResultBytes: this.c.options.maxInlineResultBytes }, this.log)
    }
  }

  /** Runs a task whose lease came with its submit, in `reserveOwn`'s slot; never throws. */
  private runOwn (task: Task, lease: HeldLease, slot: Slot, claimMs: number): void {
    this.stats.claimAttempts++
    this.claimer.track(task.id, this.claimer.won(task, 0, lease, slot, claimMs).catch((err: any) => { this.failed(task, err) }))
  }

  /**
   * A place for a task this node submits, or is handed, while every slot is busy: it offers the
   * capability, has no lag, is a member of the placement, no other peer shows a free slot, and fewer
   * than allowed wait already (LeasedAhead). The lease is then taken with the store, and the
   * reservation runs the task when a slot frees.
   */
  reserveAhead (task: Task, placement: Placement): Reservation | undefined {
    if (!this.mayLease(task, placement)) return undefined
    // a peer outside the placement with a free slot runs it now: stored and offered, it goes there
    const cap = task.capability
    if (this.c.presence.live().some(p => !p.self && (p.freeSlots[cap] ?? 0) > 0 && p.capabilities.some(c => c.name === cap))) return undefined
    const ticket = this.ahead.reserve(cap)
    if (ticket === undefined) return undefined
    const done = this.open()
    const tracked: AheadTicket = { cancel: () => { done(); ticket.cancel() }, wait: async lease => { done(); return await ticket.wait(lease) } }
    return { run: (lease, claimMs) => { this.runAhead(task, lease, tracked, claimMs) }, cancel: tracked.cancel }
  }

  /** Whether a task waits here, leased, for a slot. */
  waitsAhead (id: string): boolean {
    return this.ahead.has(id)
  }

  /** A task waiting here for a slot is let go, its lease given back unrun (canceled). */
  letGoAhead (id: string): void {
    this.ahead.letGo(id)
  }

  /** Runs a task whose lease came with its store once a slot frees; one that is let go first (stop, cancel, a wait too long) gives the lease back unrun. Never throws. */
  private runAhead (task: Task, lease: HeldLease, ticket: AheadTicket, claimMs: number): void {
    this.stats.claimAttempts++
    this.stats.claimedAhead++
    const run = async (): Promise<void> => {
      const waiting = ticket.wait(lease)
      this.claimer.drainBacklog()
      // leased while the node began to stop, after the queue was let go: let go too
      if (!this.claimer.running()) this.ahead.clear()
      // a wait is for a slot about to free, not a queue: one that lasts until the lease's first
      // renewal (or than one run may take) is given back unrun, and its placement offers the task
      // again. Renewing the leases of waiting tasks cost an overloaded mesh requests for nothing
      const o = this.c.options
      const tooLong = setTimeout(() => { this.ahead.letGo(task.id) }, Math.min(task.timeoutMs, o.leaseMs * o.renewFraction))
      const slot = await waiting.finally(() => { clearTimeout(tooLong) })
      // canceled while it waited (this member may hold the certificate before the lease says so)
      const finished = slot !== undefined && (await this.c.replica.get(task.id)).record?.final !== undefined
      if (slot === undefined || finished) {
        slot?.release()
        if (lease.held) await lease.release(false)
        return
      }
      this.c.presence.slotsChanged()
      await this.claimer.won(task, 0, lease, slot, claimMs)
    }
    this.claimer.track(task.id, run().catch((err: any) => { this.failed(task, err) }))
  }

  /** Runs the tasks that wait for a slot, oldest first, while slots are free. */
  drain (): void {
    this.ahead.drain()
  }

  /** The node stops: every waiting task is let go, its lease given back unrun. */
  letGoAll (): void {
    this.ahead.clear()
  }

  /** Resolves once every place reserved here was run or given back, or after `ms`. */
  async settled (ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (this.outstanding.size > 0 && Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined
      await new Promise<void>(resolve => {
        this.settledOne = resolve
        timer = setTimeout(resolve, deadline - Date.now())
      })
      clearTimeout(timer)
    }
  }

  private mayLease (task: Task, placement: Placement): boolean {
    return this.claimer.running() && this.c.runtime.canRun(task.capability) && this.c.runtime.refusesWork?.() !== true && placement.members.includes(this.c.peerId.toString()) && !this.claimer.lagging()
  }

  /** An outstanding place; the function closes it, once. */
  private open (): () => void {
    const place = {}
    this.outstanding.add(place)
    return () => {
      if (this.outstanding.delete(place)) this.settledOne?.()
    }
  }

  private failed (task: Task, err: any): void {
    if (err.name !== 'TaskFinishedError' && this.claimer.running()) this.log.error('run of %s failed: %s', task.id, err.stack ?? err.message)
  }
}
