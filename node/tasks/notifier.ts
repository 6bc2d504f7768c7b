import { MAX_OFFER_ITEMS } from '../../protocols/records/index.js'
import { PeerBatches } from './peer-batches.js'
import type { TaskComponents } from './components.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { Certificate, Task } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'

/** A notice as its sender fills it in; the notifier adds who sends it and when. */
export type NoticeBody = Omit<TaskNotice, 'kind' | 'from' | 'at'>

/** The notice of a completion certified for `claimId`, with its result when small enough to carry. */
export function completionNotice (task: Task, run: { generation: number, claimId: string, peer: string }, result: unknown, size: number, cert: Certificate, maxInlineBytes: number): NoticeBody {
  return { id: task.id, capability: task.capability, event: 'completed', ...run, resultSize: size, cert, ...(size <= maxInlineBytes ? { result: result as never } : {}) }
}

/**
 * Tells the peer that waits on a task (its submitter) what became of it, directly: one request,
 * where a gossiped notice cost every peer a validation and a store read.
 */
export class Notifier {
  private readonly batches = new PeerBatches<TaskNotice>(MAX_OFFER_ITEMS, async (peer, notices) => this.send(peer, notices))
  /** notices sent to peers; outcomes not sent, as they went with a handoff's answer */
  readonly stats = { sent: 0, toldWithHandoff: 0 }
  private readonly log: Logger
  /** runs (by their lease) whose outcome went to their submitter with the handoff's answer */
  private readonly toldInAnswer = new WeakSet<object>()

  constructor (private readonly c: TaskComponents) {
    this.log = c.logger('agentmesh:notifier')
  }

  /** A notice for `peer`; nothing for this node itself, whose waiters the caller wakes. */
  notify (peer: string, notice: NoticeBody): void {
    const me = this.c.peerId.toString()
    if (peer === me) return
    this.stats.sent++
    this.batches.add(peer, this.stamped(notice))
  }

  /** The notice as this node sends it now: its sender and time added. */
  stamped (notice: NoticeBody): TaskNotice {
    return { kind: 'notice', from: this.c.peerId.toString(), at: Date.now(), ...notice }
  }

  /** The outcome of the run under `lease` went to its submitter with the answer to its handoff. */
  toldWithHandoff (lease: object): void {
    this.toldInAnswer.add(lease)
  }

  /** A run's outcome for its submitter: a request, unless it went with the handoff's answer. */
  notifyOutcome (peer: string, lease: object, notice: NoticeBody): void {
    if (!this.toldInAnswer.has(lease)) this.notify(peer, notice)
    else this.stats.toldWithHandoff++
  }

  private async send (peer: string, notices: TaskNotice[]): Promise<void> {
    try {
      await this.c.records(this.c.replicaSets.peerId(peer), { op: 'notify', notices })
    } catch (err: any) {
      // a hint: the waiter polls the placement
      this.log('notice of %d task(s) to %s failed: %s', notices.length, peer, err.message)
    }
  }
}
