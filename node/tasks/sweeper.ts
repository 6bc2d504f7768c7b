import { Repeater } from './repeater.js'
import { eachLimited } from './each-limited.js'
import { Backup } from './backup.js'
import { publishNotice } from './notices.js'
import type { TaskComponents } from './components.js'
import type { Mover } from './mover.js'
import type { TaskService } from './task-service.js'
import { currentAttempts, failedAttempts, mustDecideOf } from '../../protocols/task/index.js'
import type { Certificate, Placement, TaskRecord } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'
import type { Undecided } from '../../protocols/replica/replica-init.js'

/** Non-member copies read from their placements per sweep: bounded, so a backlog of them costs little at a time. */
const REFRESHES_PER_SWEEP = 16

/** Whether a task is to be decided only because its deadline passed (by this node's clock). */
function dueByDeadlineOnly (record: TaskRecord, now: number): boolean {
  return now > record.task.deadline && mustDecideOf(record) === undefined && failedAttempts(record) < record.task.maxAttempts
}

/** When a copy is next read from its placement, the backoff, and how many reads it had. */
interface Due { at: number, delayMs: number, reads: number }

/** The same for a dead copy, and the generation it died in: one that dies again starts afresh. */
interface DeadDue extends Due { generation: number }

/** A copy's next read after one at `now`: the delay doubles up to `capMs`. */
function afterRead<D extends Due> (d: D, now: number, capMs: number): D {
  const delayMs = Math.min(d.delayMs * 2, capMs)
  return { ...d, at: now + delayMs, delayMs, reads: d.reads + 1 }
}

interface Announced {
  at: number
  count: number
}

/**
 * Recovery. Every member expires its own lapsed leases into failed attempts (retried after a
 * backoff). The first live member of a task's placement also re-announces a claimable task with
 * backoff, so a task whose announcement was lost, or whose holder died, runs again; and it asks
 * the placement to decide what no holder will: a task out of attempts or past its deadline goes
 * dead only when a majority votes so, each member by its own state and clock. A member that voted
 * and saw no certificate within a lease asks too, showing its vote to the others.
 */
export class Sweeper {
  /** reannounceHeld: re-announcements not sent because no live capable peer had a free slot; heldQueuedHere: of those, queued in this node's own backlog, with room or older than a task kept there (Offerer.queueHere) */
  /** backedUp: decisions and re-announcements this member took up for a first live member that did not act (Backup) */
  /** reannouncedByGossip: re-announcements gossiped to the capability's topic; the others were offers (Offerer.reoffer) */
  readonly stats = { sweeps: 0, reannounced: 0, reannouncedByGossip: 0, reannounceHeld: 0, heldQueuedHere: 0, decided: 0, expired: 0, deadlockMoves: 0, backedUp: 0, skippedStoreFailed: 0 }
  private lastRetention = 0
  private readonly c: TaskComponents
  private readonly tasks: TaskService
  private readonly mover: Mover
  private readonly log: Logger
  private readonly announced = new Map<string, Announced>()
  /** when recovery last tried to decide each task: once per lease, not every sweep */
  private readonly decided = new Map<string, number>()
  /**
   * when this member first saw its vote on each task: the holder has a lease's time to commit.
   * Not the record's updatedAt, which claims and repairs keep moving: under load that postponed
   * recovery for ever while claimants, refused by the voted members, kept retrying.
   */
  private readonly votedSince = new Map<string, number>()
  /**
   * When each unfinished copy this node keeps without being a member (from an announcement, a lost
   * claim, a submit) is next read from its placement, and the backoff. Completions are told to the
   * submitter alone, so such a copy hears of none: read, it settles and retention forgets it.
   */
  private readonly refreshAt = new Map<string, Due>()
  /** the same for dead letters kept outside their placement (see ReplicaIndex.deadCopies) */
  private readonly deadRefreshAt = new Map<string, DeadDue>()
  /** the reads of dead copies under way, if any */
  private deadReads: Promise<void> | undefined
  /** moves of deadlocked tasks under way, by task: one at a time each, awaited by stop */
  private readonly moves = new Map<string, Promise<void>>()
  private readonly loop: Repeater
  /** decisions and re-announcements this member takes up when the first live member does not */
  private readonly decideBackup = new Backup(() => this.c.options.backupAfterMs)
  private readonly announceBackup = new Backup(() => this.c.options.backupAfterMs)

  constructor (components: TaskComponents, tasks: TaskService, mover: Mover) {
    this.c = components
    this.tasks = tasks
    this.mover = mover
    this.log = components.logger('agentmesh:sweeper')
    this.loop = new Repeater('sweep', () => this.c.options.sweepIntervalMs, async () => this.sweep(), this.log)
  }

  start (): void {
    this.loop.start()
  }

  async stop (): Promise<void> {
    await this.loop.stop()
    await Promise.all([...this.moves.values(), this.deadReads])
  }

  /** The placement's first member that is live (this node counts as live): it sweeps the task. */
  private isFirstLiveMember (members: readonly string[], live: Set<string>): boolean {
    return this.liveRank(members, live) === 0
  }

  /**
   * This node's rank for re-announcing a task: its live rank, or 0 when the first live member is
   * the holder of a lease that just lapsed. Frozen (SIGSTOP, a paused VM), that holder stays live in
   * presence for three presence intervals, and as the first member it held its own task back until
   * it woke. Every member that saw the lapse (the granting majority) steps in, not only the next one:
   * a member that did not grant knows of no lapse and still defers to the holder.
   */
  private reannounceRank (record: TaskRecord, live: Set<string>): number {
    const rank = this.liveRank(record.placement.members, live)
    if (rank <= 0) return rank
    const me = this.c.peerId.toString()
    const first = record.placement.members.find(m => m === me || live.has(m))
    return first !== undefined && first === lapsedHolder(record) ? 0 : rank
  }

  /** This node's rank among the placement's live members (this node counts as live): 0 is the first. */
  private liveRank (members: readonly string[], live: Set<string>): number {
    const me = this.c.peerId.toString()
    return members.filter(m => m === me || live.has(m)).indexOf(me)
  }

  async sweep (): Promise<void> {
    // a store that failed a write (a full disk) can record no lapse or decision: every sweep failed
    // on its first write and logged it, each second, until the node restarted
    if (this.c.store.writeFailure !== undefined) return await this.sweepReadOnly()
    this.stats.sweeps++
    this.c.membership.refresh()
    const { undecided } = await this.c.replica.sweep()
    const now = Date.now()
    const live = new Set(this.c.presence.liveIds())
    const stillVoted = new Set(undecided.filter(u => u.voted).map(u => u.record.task.id))
    for (const id of this.votedSince.keys()) if (!stillVoted.has(id)) this.votedSince.delete(id)
    try {
      await this.recover(undecided, live, now)
    } finally {
      this.decideBackup.endRound()
    }
    await this.reannounceRound(live, now)
    await this.refreshCopies(now)
    this.deadReads ??= this.refreshDeadCopies(now).catch((err: any) => { this.log.error('reading dead copies failed: %s', String(err?.message ?? err)) }).finally(() => { this.deadReads = undefined })
    for (const id of this.announced.keys()) if (!this.c.replica.active.has(id)) this.announced.delete(id)
    for (const id of this.decided.keys()) if (!this.c.replica.active.has(id)) this.decided.delete(id)
    for (const id of this.refreshAt.keys()) if (!this.c.replica.active.has(id)) this.refreshAt.delete(id)
    for (const id of this.deadRefreshAt.keys()) if (!this.c.replica.deadCopies.has(id)) this.deadRefreshAt.delete(id)
    // retention reads the records whose retention ended: at most once a minute, or per retention period when that is shorter
    if (now - this.lastRetention >= Math.min(60_000, this.c.options.retentionMs)) {
      this.lastRetention = now
      this.stats.expired += await this.c.replica.expireRetained()
      await this.c.membership.save()
    }
  }

  /**
   * A sweep of a node whose store failed: it re-announces the claimable tasks it holds as their
   * first live member (it stays live in presence, and the others would wait backupAfterMs for it),
   * and records nothing (the lapses and decisions are the other members').
   */
  private async sweepReadOnly (): Promise<void> {
    this.stats.skippedStoreFailed++
    this.c.membership.refresh()
    await this.reannounceRound(new Set(this.c.presence.liveIds()), Date.now())
  }

  /** One round of re-announcements, its back-up round ended however it ends. */
  private async reannounceRound (live: Set<string>, now: number): Promise<void> {
    try {
      await this.reannounce(live, now)
    } finally {
      this.announceBackup.endRound()
    }
  }

  /** Asks the placement to decide the tasks that need it (recovery), up to recoveryConcurrency at a time. */
  private async recover (undecided: Undecided[], live: Set<string>, now: number): Promise<void> {
    await eachLimited(undecided, this.c.options.recoveryConcurrency, async ({ record, voted }) => {
      const id = record.task.id
      // a task this node is moving is told by its move, once
      if (this.moves.has(id)) return
      // a member that voted finishes the decision itself: only it knows of its vote, and the first
      // live member may hold none (a holder whose vote reached one member, then died for good)
      const rank = this.liveRank(record.placement.members, live)
      // a task due only by its deadline waits less: each member reads the deadline by its own clock
      const afterMs = dueByDeadlineOnly(record, now) ? Math.min(this.c.options.backupAfterMs, this.c.options.deadlineBackupMs) : this.c.options.backupAfterMs
      if (!voted && !this.decideBackup.due(id, rank, now, afterMs)) return
      // a holder that voted commits at once; recovery steps in only when it did not
      if (voted && !this.votedSince.has(id)) this.votedSince.set(id, now)
      if (voted && now - (this.votedSince.get(id) ?? now) < this.c.options.leaseMs) return
      const last = this.decided.get(id) ?? 0
      if (now - last < this.c.options.leaseMs) return
      this.decided.set(id, now)
      if (!voted && rank > 0) this.stats.backedUp++
      const cert = await this.decide(record, live)
      if (cert !== undefined) await this.tell(record, cert)
    })
  }

  /** The first live member of each claimable task's placement announces it again, with backoff. */
  private async reannounce (live: Set<string>, now: number): Promise<void> {
    const takers = this.takers()
    for (const id of [...this.c.replica.activeMember]) {
      const record = await this.c.replica.claimableRecord(id)
      const rank = record === undefined ? -1 : this.reannounceRank(record, live)
      if (record === undefined || !this.announceBackup.due(id, rank, now)) continue
      // created "later" by a submitter's clock ahead of this one: counted from now, or its first
      // re-announcement waited out the skew (an hour ahead, an hour)
      const seen = this.announced.get(id) ?? { at: Math.min(record.task.createdAt, now), count: 0 }
      const due = Math.max(seen.at + this.delay(seen.count), record.notBefore ?? 0)
      // a retry whose backoff just ended goes out at once, not after the re-announce backoff
      const retryReady = record.notBefore !== undefined && record.notBefore > seen.at && now >= record.notBefore
      if (now < due && !retryReady) {
        this.announced.set(id, seen)
        continue
      }
      // queued here (queueHere): re-offered, this node would come first in its order and answer
      // "taken" again, spending a free peer's place; it runs here, or a free peer's pull takes it
      if (this.tasks.offerer?.queuedHere(id) === true) continue
      // with every capable peer busy an announcement reaches nobody who can take it, and under
      // overload it was most of the traffic: every peer checked and stored each one. The task waits
      // on its placement until a slot frees (a free peer also pulls it), its backoff unspent; and a
      // sweep sends no more of a capability's than there are free slots, not every held one at once.
      if (!takers(record.task.capability)) {
        this.stats.reannounceHeld++
        if (this.tasks.offerer?.queueHere(record.task, record.placement) === true) this.stats.heldQueuedHere++
        continue
      }
      // a retry is a new attempt to place: its re-announcements count from none, offers first again
      const count = retryReady ? 0 : seen.count
      this.announced.set(id, { at: now, count: count + 1 })
      this.stats.reannounced++
      if (rank > 0) this.stats.backedUp++
      // offered first, to the few peers that would claim it; gossiped to every capable peer once
      // reannounceOffers went unanswered, or when no capable peer with a free slot is known
      if (count < this.c.options.reannounceOffers && this.tasks.offerer?.reoffer(record.task, record.placement) === true) continue
      this.stats.reannouncedByGossip++
      await this.c.gossip.announceTask(record.task, record.placement)
    }
  }

  /**
   * Asks the placement to decide the task. Votes that split so no value can ever have a majority
   * (every member voted) can certify nothing in this epoch: the first live member moves the task to
   * the next epoch on the same members, which keeps the largest group's value (see Mover).
   */
  private async decide (record: TaskRecord, live: Set<string>): Promise<Certificate | undefined> {
    try {
      return await this.c.leases.decide({ id: record.task.id, placement: record.placement }, record.generation)
    } catch (err: any) {
      if (err.name !== 'DeadlockedVotesError') throw err
      // the sweep skips tasks being moved, so none is moved twice at once
      if (this.isFirstLiveMember(record.placement.members, live)) this.moveDeadlocked(record, err.message)
      return undefined
    }
  }

  /**
   * Moves a deadlocked task and tells its outcome as a decision is told, outside the sweep: a
   * member silent during the move must not hold up every other task's recovery. A move that fails
   * (a member did not answer its seal) is tried again a lease later; one that sealed and was not
   * installed is finished by the mover's own check.
   */
  private moveDeadlocked (record: TaskRecord, why: string): void {
    const id = record.task.id
    this.log('%s: %s; moving it to the next epoch', id, why)
    const moving = (async () => {
      let next: Placement
      try {
        next = await this.mover.move(record, [])
      } catch (err: any) {
        this.log('move of %s not made: %s', id, err.message)
        return
      }
      this.stats.deadlockMoves++
      // the move certified the value it bound the new epoch to: its members answer with it (when
      // none does yet, the task stays undecided here and a later sweep tells it)
      const cert = await this.c.leases.decide({ id, placement: next }, record.generation)
      if (cert !== undefined) await this.tell(record, cert)
    })().catch((err: Error) => { this.log.error('%s moved, but its outcome was not told: %s', id, err.message) }).finally(() => { this.moves.delete(id) })
    this.moves.set(id, moving)
  }

  /** A task recovery decided: waiters here woken, a dead task's event, and the notice for submitters elsewhere. */
  private async tell (record: TaskRecord, cert: Certificate): Promise<void> {
    const id = record.task.id
    this.stats.decided++
    this.tasks.wake(id)
    if (cert.value.state === 'dead') this.c.events.safeDispatchEvent('dead', { detail: { id, capability: record.task.capability, reason: cert.value.reason ?? 'dead' } })
    await publishNotice(this.c, { id, capability: record.task.capability, event: cert.value.state, generation: record.generation, cert, ...(cert.value.reason === undefined ? {} : { error: cert.value.reason }) })
  }

  /**
   * Reads a few unfinished non-member copies a sweep from their placements, each first a lease after
   * it was seen, then with backoff; the longest overdue first, so that a backlog larger than a
   * sweep's reads goes round (read in the order kept, the first few hundred were read again and again
   * and the rest never).
   */
  private async refreshCopies (now: number): Promise<void> {
    const due: Array<[string, Due]> = []
    for (const id of this.c.replica.active) {
      if (this.c.replica.activeMember.has(id)) continue
      const next = this.refreshAt.get(id)
      if (next === undefined) this.refreshAt.set(id, { at: now + this.c.options.leaseMs, delayMs: this.c.options.leaseMs, reads: 0 })
      else if (now >= next.at) due.push([id, next])
    }
    due.sort((x, y) => x[1].at - y[1].at)
    // one at a time: a slow placement slows the reads down, where reads all at once added to its load
    for (const [id, d] of due.slice(0, REFRESHES_PER_SWEEP)) {
      // one member a read, another each time: any member's certified final state settles the copy,
      // and reading all of them for every copy kept was most of the requests under overload
      await this.tasks.find(id, { oneMember: d.reads }).catch((err: Error) => { this.log('refresh of the copy of %s failed: %s', id, err.message) })
      this.refreshAt.set(id, afterRead(d, now, this.c.options.reannounceCapMs))
    }
  }

  /**
   * Reads a few dead letters kept outside their placement, a lease after they died and then with
   * backoff up to deadCopyRefreshCapMs, one member a read. Outside the sweep, one batch at a time:
   * dead letters are kept until dropped, and a placement long gone must not hold recovery up.
   */
  private async refreshDeadCopies (now: number): Promise<void> {
    const o = this.c.options
    const due: Array<[string, DeadDue]> = []
    for (const [id, generation] of this.c.replica.deadCopies) {
      const next = this.deadRefreshAt.get(id)
      if (next === undefined || next.generation !== generation) this.deadRefreshAt.set(id, { at: now + o.leaseMs, delayMs: o.leaseMs, reads: 0, generation })
      else if (now >= next.at) due.push([id, next])
      if (due.length >= REFRESHES_PER_SWEEP) break
    }
    await Promise.all(due.map(async ([id, d]) => {
      await this.tasks.find(id, { oneMember: d.reads, complete: true }).catch((err: any) => { this.log('refresh of the dead copy of %s failed: %s', id, String(err?.message ?? err)) })
      // kept for the generation read, so a copy the read found dead again in a later one starts afresh
      if (this.c.replica.deadCopies.has(id)) this.deadRefreshAt.set(id, afterRead(d, Date.now(), o.deadCopyRefreshCapMs))
    }))
  }

  /**
   * One sweep's budget of re-announcements: a capability's free slots over the live peers that
   * offer it, this one included, as presence last told them. Each call spends one; false when none is left.
   */
  private takers (): (capability: string) => boolean {
    const left = new Map<string, number>()
    return capability => {
      let free = left.get(capability)
      if (free === undefined) {
        free = 0
        for (const p of this.c.presence.live()) if (p.capabilities.some(cap => cap.name === capability)) free += Math.max(0, p.freeSlots[capability] ?? 0)
      }
      left.set(capability, Math.max(0, free - 1))
      return free > 0
    }
  }

  private delay (count: number): number {
    return Math.min(this.c.options.reannounceCapMs, this.c.options.reannounceBaseMs * 2 ** count)
  }
}

/** The peer of the current generation's latest attempt when its lease lapsed (released partial claims aside). */
function lapsedHolder (record: TaskRecord): string | undefined {
  const last = currentAttempts(record).at(-1)
  return last?.outcome === 'expired' ? last.peer : undefined
}
