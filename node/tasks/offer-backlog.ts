import type { Placement, Task } from '../../protocols/task/index.js'

export interface QueuedOffer { task: Task, placement: Placement }

/**
 * Offers a busy node queued for its next free slots (offerQueueLimit), taken oldest task first.
 * Queued in the order they came, a backlog under sustained overload ran the newest tasks: a new
 * submit's offer came at once and filled every place a slot freed, while an older task, declined
 * when the queue was full, was offered again only at its re-announcement, a minute later at most,
 * to find the queue full again (an overload of three daemons: tasks accepted first waited up to
 * three minutes, those accepted later about ten seconds).
 */
export class OfferBacklog {
  private readonly queued = new Map<string, QueuedOffer>()
  /** the youngest queued, found again after a change (null) */
  private youngestKept: QueuedOffer | undefined | null = null

  constructor (private readonly limit: () => number) {}

  get size (): number {
    return this.queued.size
  }

  has (id: string): boolean {
    return this.queued.has(id)
  }

  delete (id: string): void {
    if (this.queued.delete(id)) this.youngestKept = null
  }

  clear (): void {
    this.queued.clear()
    this.youngestKept = null
  }

  /** Whether `add` would queue `task`: room, or a younger task to let go. */
  wouldTake (task: Task): boolean {
    if (this.queued.has(task.id)) return false
    if (this.queued.size < this.limit()) return true
    const youngest = this.youngest()
    return youngest !== undefined && older(task, youngest.task)
  }

  /**
   * Queues an offer. When the queue is full, a task older than its youngest takes that one's place:
   * the youngest's offer is let go (stored on its placement, its task comes back by a
   * re-announcement or a pull). Whether it was queued, and the id let go if one was.
   */
  add (offer: QueuedOffer): { queued: boolean, letGo?: string } {
    if (this.queued.size < this.limit()) {
      this.queued.set(offer.task.id, offer)
      this.youngestKept = null
      return { queued: true }
    }
    const youngest = this.youngest()
    if (youngest === undefined || !older(offer.task, youngest.task)) return { queued: false }
    this.queued.delete(youngest.task.id)
    this.queued.set(offer.task.id, offer)
    this.youngestKept = null
    return { queued: true, letGo: youngest.task.id }
  }

  private youngest (): QueuedOffer | undefined {
    if (this.youngestKept !== null) return this.youngestKept
    let youngest: QueuedOffer | undefined
    for (const q of this.queued.values()) if (youngest === undefined || older(youngest.task, q.task)) youngest = q
    this.youngestKept = youngest
    return youngest
  }

  /** The queued offers, oldest task first. */
  oldestFirst (): QueuedOffer[] {
    return [...this.queued.values()].sort((a, b) => older(a.task, b.task) ? -1 : older(b.task, a.task) ? 1 : 0)
  }
}

/** Whether `a` was created before `b` (the submitter's stamp; ties by id, so every order agrees). */
function older (a: Task, b: Task): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id)
}
