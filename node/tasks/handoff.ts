import { taskNoticeSchema } from '../../protocols/gossip/index.js'
import { handoffAnswerSchema } from '../../protocols/records/index.js'
import { isBadRequest } from '../../protocols/rpc/served.js'
import { inSpan } from '../tracing.js'
import { settledWithin } from './settled-within.js'
import { completionNotice } from './notifier.js'
import type { Claimer } from './claimer.js'
import type { Notifier } from './notifier.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { OwnRuns } from './own-runs.js'
import type { TaskComponents } from './components.js'
import type { HeldLease, Prerun } from '../../protocols/lease/index.js'
import type { HandoffOutcome } from '../../protocols/records/index.js'
import type { TaskRecord } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'

export interface HandoffStats {
  /** new tasks this node handed to a member, and those the member took */
  sent: number
  taken: number
  /** declined, refused, failed or unanswered within handoffTimeoutMs: stored and offered by this node */
  declined: number
  /** unanswered for handoffSuspectMs while its member answered other requests: taken as full, the handoff waited on */
  slow: number
  /** its member heard from for none of the last handoffSuspectMs: taken as full, and the task handed to another too */
  suspected: number
  /** of those, handed to another member of the placement (the lease lets one of the two run it) */
  hedged: number
  /** handoffs other nodes sent here, and those this node took */
  received: number
  accepted: number
  /** from a peer that is not the task's submitter, or for a placement without this node: never claimed */
  refused: number
  /** handoffs taken here whose answer told the submitter the certified outcome (a pure agent's run before the claim); of those, answered past the submitter's window and told by notify too */
  outcomesTold: number
  outcomesToldLate: number
  /** answers that told this node a handed task's outcome, and notices in them that did not parse (the task taken all the same) */
  outcomesHeard: number
  outcomesMalformed: number
}

/** How a handoff's answer tells a task's outcome: built and marked sent by the taker's notifier, applied by the submitter as a notice. */
export interface HandoffTelling {
  notifier: Pick<Notifier, 'stamped' | 'toldWithHandoff'>
  /** a notice from `sender`, the member that answered */
  apply: (notice: TaskNotice, sender: string) => void
}

/**
 * Stores a new record on its placement and leases it to this node, with one acquire per member
 * that carries the record: a grant is written with the record, so a majority's grants are a
 * majority's copies. Undefined when no majority granted: the caller stores it the usual way.
 */
export async function acquireWithRecord (c: TaskComponents, log: Logger, record: TaskRecord, prerun?: Prerun): Promise<HeldLease | undefined> {
  const task = record.task
  try {
    return await inSpan('agentmesh.claim', task.traceparent, { 'agentmesh.task': task.id, 'agentmesh.capability': task.capability }, async () => c.leases.acquire({ id: task.id, placement: record.placement }, record, prerun))
  } catch (err: any) {
    if (err.name !== 'LeaseDeniedError' && err.name !== 'QuorumUnavailableError' && err.name !== 'TaskFinishedError' && err.name !== 'StaleTermError') throw err
    log('%s was not leased to this node with its store: %s', task.id, err.message)
    return undefined
  }
}

/**
 * A submitter that will not run a new task itself hands it to a member of its placement with a
 * free slot, which claims it with the store and runs it: one request from the submitter, where
 * the usual way is a put to each member, an offer, and the claimant's acquires. The member
 * answers once a majority granted, so a majority holds the record, as after a put; a member that
 * cannot declines (at once when busy or lagging, after its claim gives up without a majority), and
 * the submitter stores and offers the task itself. So the path of a task does not grow with the
 * mesh: it is the path of a task submitted on a member.
 */
export class Handoff {
  readonly stats: HandoffStats = { sent: 0, taken: 0, declined: 0, slow: 0, suspected: 0, hedged: 0, received: 0, accepted: 0, refused: 0, outcomesTold: 0, outcomesToldLate: 0, outcomesHeard: 0, outcomesMalformed: 0 }
  private readonly log: Logger
  /** members that refused `tell` (from before it), until they connect again (a restart may bring a newer one) */
  private readonly untold = new Set<string>()

  constructor (private readonly c: TaskComponents, private readonly claimer: Pick<Claimer, 'order'> & { ownRuns: Pick<OwnRuns, 'reserveOwn' | 'reserveAhead'> }, private readonly telling?: HandoffTelling) {
    this.log = c.logger('agentmesh:handoff')
  }

  /** A peer connected again: asked with `tell` again. */
  connected (peer: string): void {
    this.untold.delete(peer)
  }

  /** The member to hand a new task to: the first of its placement, other than this node, in claim order among the peers with a free slot. */
  taker (record: TaskRecord): string | undefined {
    const me = this.c.peerId.toString()
    const members = record.placement.members
    return this.claimer.order(record.task).find(p => p !== me && members.includes(p))
  }

  /**
   * Hands a new record to `peer`; true once it, or another member, holds the lease. Never throws.
   * A member from which no answer at all came for handoffSuspectMs (paused, or cut off) is taken as
   * full, and the record is handed to the next member with a free slot as well: whichever of the
   * two gets a majority's grants runs it, the other is refused. A member that answers other
   * requests meanwhile is slow, not silent: taken as full all the same, so the submits behind this
   * one go elsewhere, but its answer is awaited, up to handoffTimeoutMs, as a second claim round
   * would only add to a loaded mesh's work. False when neither took it.
   */
  async give (peer: string, record: TaskRecord): Promise<boolean> {
    const suspectMs = this.c.options.handoffSuspectMs
    let answer: boolean | undefined
    const first = this.ask(peer, record).then(taken => { answer = taken; return taken })
    const sentAt = performance.now()
    let slow = false
    while (true) {
      const left = suspectMs - this.c.heard.quietFor(peer, sentAt)
      if (left <= 0) break
      await settledWithin(first, left)
      // answers already here are read first: a submitter behind on its own loop would take its timer for the peer's silence
      await new Promise(resolve => setImmediate(resolve))
      if (answer !== undefined) return answer
      if (this.c.heard.quietFor(peer, sentAt) < suspectMs && !slow) {
        slow = true
        this.stats.slow++
        // the submits behind this one are not handed to it meanwhile
        this.c.presence.markFull(peer, record.task.capability)
      }
    }
    this.stats.suspected++
    this.c.presence.markFull(peer, record.task.capability)
    const next = this.taker(record)
    // a hedge started near the end of the first handoff's time would wait out a whole timeout of its own
    const timeLeft = this.c.options.handoffTimeoutMs - (performance.now() - sentAt)
    if (next !== undefined && next !== peer && timeLeft >= suspectMs) {
      this.stats.hedged++
      if (await this.ask(next, record)) return true
    }
    return await first
  }

  /** One handoff request; a member that declines as busy, or does not answer, is taken as full. */
  private async ask (peer: string, record: TaskRecord): Promise<boolean> {
    this.stats.sent++
    let full = true
    try {
      const timeoutMs = this.c.options.handoffTimeoutMs
      // half the wait for the answer: the other half is for its way back, on a loaded machine
      const ask = async (tell: boolean): Promise<unknown> => this.c.records(this.c.replicaSets.peerId(peer), { op: 'handoff', record, ...(tell ? { tell: Math.max(1, Math.floor(timeoutMs / 2)) } : {}) }, { timeoutMs })
      const tell = this.telling !== undefined && !this.untold.has(peer)
      let raw = await ask(tell)
      // a member from before `tell` refuses the field: asked again without, and from now on
      if (tell && isBadRequest(raw)) {
        this.untold.add(peer)
        raw = await ask(false)
      }
      const answer = handoffAnswerSchema.safeParse(raw)
      if (answer.success && answer.data.taken) {
        this.stats.taken++
        if (answer.data.notice !== undefined && this.telling !== undefined) {
          // apart from the answer's: a notice this node cannot read leaves the task taken, and waits read the placement
          const notice = taskNoticeSchema.safeParse(answer.data.notice)
          if (notice.success) {
            this.stats.outcomesHeard++
            // the sender is the member at the other end of the stream, whatever the notice says (as a notify's)
            this.telling.apply({ ...notice.data, from: peer }, peer)
          } else this.stats.outcomesMalformed++
        }
        return true
      }
      // a peer from before handoffs refuses the op: it still takes offers
      full = answer.success ? answer.data.busy === true : !isBadRequest(raw)
    } catch (err: any) {
      this.log('handoff of %s to %s failed: %s', record.task.id, peer, err.message)
    }
    // under load most declines are slots filled since the peer's last presence: until its next
    // presence it is handed and offered no task of this capability
    if (full) this.c.presence.markFull(peer, record.task.capability)
    this.stats.declined++
    return false
  }

  /** The receiving side: claims and runs a task handed here when this node can, else declines. Never throws. */
  async take (record: TaskRecord, from: string, tellWithinMs?: number): Promise<HandoffOutcome> {
    const arrived = performance.now()
    this.stats.received++
    const task = record.task
    // only a task's submitter hands it over, and only to a member: anything else is not a submit
    if (task.submitter !== from || !record.placement.members.includes(this.c.peerId.toString())) {
      this.stats.refused++
      return { outcome: 'declined' }
    }
    // its slots filled since its last presence: leased all the same, to run as one frees, where a
    // decline has the submitter store the task and offer it, two more requests to each member
    const place = this.claimer.ownRuns.reserveOwn(task, record.placement) ?? this.claimer.ownRuns.reserveAhead(task, record.placement)
    if (place === undefined) return { outcome: 'busy' }
    const prerun = place.runBeforeClaim === undefined ? undefined : await place.runBeforeClaim()
    const asked = performance.now()
    let lease: HeldLease | undefined
    try {
      lease = await acquireWithRecord(this.c, this.log, record, prerun)
    } catch (err: any) {
      this.log.error('handoff of %s from %s failed: %s', task.id, from, err.message)
    }
    if (lease === undefined) {
      place.cancel()
      return { outcome: 'declined' }
    }
    this.stats.accepted++
    const notice = tellWithinMs === undefined ? undefined : this.outcomeOf(record, lease, performance.now() - arrived <= tellWithinMs)
    place.run(lease, performance.now() - asked)
    return { outcome: 'taken', ...(notice === undefined ? {} : { notice }) }
  }

  /**
   * The certified outcome of a task whose grants voted for its run before the claim: a majority
   * stored their votes with their grants, so it is the task's outcome whatever this node does next.
   * Told with an answer sent within the submitter's window, the run's own notice is not sent: one
   * request fewer a handed task, and the submitter hears it before this node's commit is on its
   * disk. Past the window the submitter may have stopped waiting for the answer: `notify` as well.
   */
  private outcomeOf (record: TaskRecord, lease: HeldLease, inTime: boolean): TaskNotice | undefined {
    const ran = lease.prerun
    if (ran?.cert === undefined || this.telling === undefined) return undefined
    this.stats.outcomesTold++
    if (inTime) this.telling.notifier.toldWithHandoff(lease)
    else this.stats.outcomesToldLate++
    // the generation the run reports under (Executor.run): a new record's, or the grants' when later
    const generation = Math.max(record.generation, lease.generation)
    return this.telling.notifier.stamped(completionNotice(record.task, { generation, claimId: lease.claimId, peer: this.c.peerId.toString() }, ran.result, ran.size, ran.cert, this.c.options.maxInlineResultBytes))
  }
}

