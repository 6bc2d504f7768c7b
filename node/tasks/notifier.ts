import { MAX_OFFER_ITEMS } from '../../protocols/records/index.js'
import { PeerBatches } from './peer-batches.js'
import type { TaskComponents } from './components.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { Logger } from '@libp2p/interface'

/**
 * Tells the peer that waits on a task (its submitter) what became of it, directly: one request,
 * where a gossiped notice cost every peer a validation and a store read.
 */
export class Notifier {
  private readonly batches = new PeerBatches<TaskNotice>(MAX_OFFER_ITEMS, async (peer, notices) => this.send(peer, notices))
  private readonly log: Logger

  constructor (private readonly c: TaskComponents) {
    this.log = c.logger('agentmesh:notifier')
  }

  /** A notice for `peer`; nothing for this node itself, whose waiters the caller wakes. */
  notify (peer: string, notice: Omit<TaskNotice, 'kind' | 'from' | 'at'>): void {
    const me = this.c.peerId.toString()
    if (peer === me) return
    this.batches.add(peer, { kind: 'notice', from: me, at: Date.now(), ...notice })
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
