import { byteLength, finalOf } from '../../protocols/task/index.js'
import { findTask } from './find-task.js'
import type { TaskComponents } from './components.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { StoredResult, TaskRecord } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'

/** Reads a notice may start at once: a burst of notices must not become a burst of reads. */
const MAX_REFRESHING = 64

/**
 * A notice is a hint, never state: it wakes whoever waits on the task, and a node that keeps an
 * unfinished copy, or a final one of an older generation (a redrive), reads the placement.
 */
export class NoticeApplier {
  private readonly refreshing = new Set<string>()

  constructor (
    private readonly c: TaskComponents,
    private readonly log: Logger,
    private readonly wake: (id: string) => void
  ) {}

  apply (n: TaskNotice, signer?: string): void {
    this.c.events.safeDispatchEvent('notice', { detail: n })
    if (n.event === 'submitted') return
    if (n.event === 'running' || this.refreshing.has(n.id) || this.refreshing.size >= MAX_REFRESHING) {
      this.wake(n.id)
      return
    }
    this.refreshing.add(n.id)
    this.refresh(n, signer).catch(err => { this.log('refresh of %s after a notice failed: %s', n.id, err.message) }).finally(() => {
      this.refreshing.delete(n.id)
      // woken once the copy is as fresh as the notice could make it
      this.wake(n.id)
    })
  }

  private async refresh (n: TaskNotice, signer: string | undefined): Promise<void> {
    const { record } = await this.c.replica.get(n.id)
    if (record === undefined) return
    // a final copy is settled, unless the notice is of a later generation: a redrive
    const redriven = record.final !== undefined && n.generation > record.generation
    if (record.final !== undefined && !redriven) return
    // a member's own state is left to the commit and anti-entropy; a cache copy takes the certified
    // outcome the notice carries, checked like any other (against the placement this node holds,
    // and the result against the certified hash), and reads the placement only when it cannot
    if (this.c.replica.isMember(record)) return
    if (n.cert !== undefined && await this.keepCertified(record, n, signer)) return
    // a settled copy answers reads without asking: a redriven one is read from the placement
    await findTask(this.c, n.id, { complete: redriven })
  }

  /** Keeps the certified final a notice carries in this node's cache copy; false when it does not settle it. */
  private async keepCertified (record: TaskRecord, n: TaskNotice, signer: string | undefined): Promise<boolean> {
    const cert = n.cert
    if (cert === undefined || cert.generation !== record.generation) return false
    const v = cert.value
    const completed = v.state === 'completed'
    if (completed && (n.result === undefined || v.claimId === undefined)) return false
    const final = finalOf(cert, Date.now(), completed ? { peer: n.peer ?? n.from, size: n.resultSize ?? byteLength(n.result) } : undefined)
    const result = completed ? { claimId: v.claimId as string, peer: n.peer ?? n.from, value: n.result as StoredResult['value'], size: n.resultSize ?? byteLength(n.result), at: Date.now() } : undefined
    // the signer's own vote is its word, for this put only: not remembered as checked
    const trusted = signer === undefined ? undefined : (peer: string): boolean => peer === signer
    const kept = await this.c.replica.put({ ...record, final, updatedAt: Date.now() }, result, trusted)
    if (kept?.final === undefined) return false
    return !completed || (await this.c.replica.get(n.id)).result !== undefined
  }
}

/**
 * Publishes a notice on the results topic and tells this node's own listeners (the event streams)
 * too: gossipsub does not deliver a node's own message back to it, so a watch on the node that
 * failed, decided, canceled or redrove a task never heard that change.
 */
export async function publishNotice (c: Pick<TaskComponents, 'gossip' | 'events' | 'peerId'>, notice: Omit<TaskNotice, 'kind' | 'from' | 'at'>): Promise<void> {
  c.events.safeDispatchEvent('notice', { detail: { kind: 'notice', from: c.peerId.toString(), at: Date.now(), ...notice } })
  await c.gossip.publishNotice(notice)
}
