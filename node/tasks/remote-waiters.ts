import type { Notifier } from './notifier.js'
import type { StoredResult, TaskRecord } from '../../protocols/task/index.js'

/**
 * Nodes that wait on a task they did not submit, as a member of its placement knows them: the
 * completion notice goes to the submitter only, so such a wait used to wake on its first poll, a
 * second or more after the task finished. A waiter asks one member to watch the task (its `get`
 * says so), and the member tells it once the final state is stored here. Bounded: past `limit`
 * the oldest are forgotten, and those waits wake on their next poll.
 */
export class RemoteWaiters {
  readonly stats = { watched: 0, told: 0, forgotten: 0 }
  /** task id -> peers waiting on it, oldest task first */
  private readonly byTask = new Map<string, Set<string>>()
  private size = 0

  constructor (private readonly limit: number, private readonly notifier: Pick<Notifier, 'notify'>, private readonly maxInlineResultBytes: number) {}

  watch (id: string, peer: string): void {
    const peers = this.byTask.get(id) ?? new Set<string>()
    if (peers.has(peer)) return
    peers.add(peer)
    this.byTask.set(id, peers)
    this.size++
    this.stats.watched++
    while (this.size > this.limit) {
      const [oldest, set] = this.byTask.entries().next().value as [string, Set<string>]
      this.byTask.delete(oldest)
      this.size -= set.size
      this.stats.forgotten += set.size
    }
  }

  unwatch (id: string, peer: string): void {
    const peers = this.byTask.get(id)
    if (peers?.delete(peer) !== true) return
    this.size--
    if (peers.size === 0) this.byTask.delete(id)
  }

  /** The task's final state is stored here: each peer waiting on it is told, with the result when small. */
  finished (record: TaskRecord, result: StoredResult | undefined): void {
    const id = record.task.id
    const peers = this.byTask.get(id)
    const final = record.final
    if (peers === undefined || final === undefined) return
    this.byTask.delete(id)
    this.size -= peers.size
    const inline = result !== undefined && result.claimId === final.claimId && result.size <= this.maxInlineResultBytes
    for (const peer of peers) {
      this.stats.told++
      this.notifier.notify(peer, {
        id,
        capability: record.task.capability,
        event: final.state,
        generation: final.generation,
        ...(final.claimId === undefined ? {} : { claimId: final.claimId }),
        ...(final.peer === undefined ? {} : { peer: final.peer }),
        ...(final.resultSize === undefined ? {} : { resultSize: final.resultSize }),
        cert: final.cert,
        ...(inline ? { result: result.value as never } : {})
      })
    }
  }
}
