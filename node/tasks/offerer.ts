import { MAX_OFFER_ITEMS, offerAnswerSchema } from '../../protocols/records/index.js'
import { PeerBatches } from './peer-batches.js'
import type { Claimer } from './claimer.js'
import type { TaskComponents } from './components.js'
import type { Placement, Task } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'

interface Offer {
  task: Task
  placement: Placement
  /** the peers to ask, in claim order, and which one is asked now */
  order: string[]
  next: number
  /** a re-announcement's offer (reoffer): gossiped when every peer asked declines */
  again: boolean
}

export interface OffererStats {
  /** new tasks offered straight to a peer; offers (new tasks' and re-offers') that found a taker */
  offered: number
  taken: number
  /** offers a busy peer declined, passed on to the next peer in order */
  passedOn: number
  /** offered to every candidate and taken by none: a new task is left to the placement's re-announcement and pulls, a re-offered one is gossiped (regossiped) */
  declined: number
  /** no live capable peer known: announced to the whole mesh instead */
  announced: number
  /** re-announcements of unclaimed tasks sent as offers (reoffer), counted apart from new tasks */
  reoffered: number
  /** re-offers every peer declined (or did not answer), gossiped at once instead */
  regossiped: number
}

/**
 * Hands a new task straight to the peer that should run it, instead of flooding an announcement
 * that every peer validates: the capable peers with a free slot, members of the task's placement
 * first, each group in the task's claim order, up to claimRanks of them. Each takes it or declines (busy), and the last one asked queues it. A task
 * no one took stays on its placement, whose first live member re-announces it, and peers pull it.
 * So the work per task does not grow with the mesh.
 */
export class Offerer {
  readonly stats: OffererStats = { offered: 0, taken: 0, passedOn: 0, declined: 0, announced: 0, reoffered: 0, regossiped: 0 }
  private readonly batches = new PeerBatches<Offer>(MAX_OFFER_ITEMS, async (peer, offers) => this.send(peer, offers))
  private readonly log: Logger

  constructor (private readonly c: TaskComponents, private readonly claimer: Claimer) {
    this.log = c.logger('agentmesh:offerer')
  }

  /** Offers a task that its placement has stored; never throws. */
  offer (task: Task, placement: Placement): void {
    if (this.enqueue(task, placement, false)) {
      this.stats.offered++
      return
    }
    this.stats.announced++
    void this.c.gossip.announceTask(task, placement)
  }

  /**
   * Offers an unclaimed task again, for its placement's re-announcement, as `offer` does a new one;
   * when every peer asked declines (a view of free slots gone stale, full queues, a peer that does
   * not answer), it is gossiped at once, not a re-announcement later. False, and nothing sent, when
   * no capable peer with a free slot is known: the caller gossips it.
   */
  reoffer (task: Task, placement: Placement): boolean {
    const sent = this.enqueue(task, placement, true)
    if (sent) this.stats.reoffered++
    return sent
  }

  /**
   * A re-announcement held because no peer has a free slot: queued in this node's own backlog when
   * it is older than a task kept there (or there is room), so a sustained overload runs its oldest
   * tasks first. Held alone, a task accepted early waited out the whole overload while the queues
   * took newer tasks' offers. Local: nothing is sent. Whether it was queued.
   */
  queueHere (task: Task, placement: Placement): boolean {
    if (!this.claimer.wouldQueue(task)) return false
    return this.claimer.takeOffers([{ task, placement, queue: true }]).includes(task.id)
  }

  /** Whether `id` waits in this node's own queue: run here as a slot frees, oldest first, so not offered again. */
  queuedHere (id: string): boolean {
    return this.claimer.queued(id)
  }

  /**
   * Queues the offer to the first of the peers to ask, up to claimRanks: capable ones with a free
   * slot, members of its placement first, each group in claim order. False when there is none.
   */
  private enqueue (task: Task, placement: Placement, again: boolean): boolean {
    // members first: their own grant, vote and commit are local calls, not requests; this node
    // first of all when it is one, so the offer and the notice are local too
    const members = new Set(placement.members)
    const me = this.c.peerId.toString()
    const ranked = this.claimer.order(task)
    const local = members.has(me) && ranked.includes(me) ? [me] : []
    const order = [...local, ...ranked.filter(p => members.has(p) && p !== me), ...ranked.filter(p => !members.has(p))].slice(0, this.c.options.claimRanks)
    if (order.length === 0) return false
    this.batches.add(order[0] as string, { task, placement, order, next: 0, again })
    return true
  }

  private async send (peer: string, offers: Offer[]): Promise<void> {
    const items = offers.map(o => ({ task: o.task, placement: o.placement, ...(o.next === o.order.length - 1 ? { queue: true } : {}) }))
    let taken = new Set<string>()
    if (peer === this.c.peerId.toString()) {
      taken = new Set(this.claimer.takeOffers(items))
    } else {
      try {
        const answer = offerAnswerSchema.safeParse(await this.c.records(this.c.replicaSets.peerId(peer), { op: 'offer', items }))
        if (answer.success) taken = new Set(answer.data.taken)
      } catch (err: any) {
        this.log('offer of %d task(s) to %s failed: %s', items.length, peer, err.message)
      }
    }
    for (const o of offers) {
      if (taken.has(o.task.id)) {
        this.stats.taken++
      } else if (++o.next < o.order.length) {
        this.stats.passedOn++
        this.batches.add(o.order[o.next] as string, o)
      } else {
        this.stats.declined++
        if (o.again) {
          this.stats.regossiped++
          void this.c.gossip.announceTask(o.task, o.placement)
        }
      }
    }
  }
}
