import { CorruptRecordError } from '../errors.js'
import { capabilityKey, createdKey } from './store.js'
import type { Store } from './store.js'
import { isDeadLetter } from '../../protocols/task/index.js'
import type { LeaseState, ReplicaStore, ReplicaWrite, StoredResult, TaskRecord } from '../../protocols/task/index.js'
import type { BatchOp } from './namespace.js'

export interface LevelReplicaStoreInit {
  /**
   * fsync each write a peer relies on (lease grants, records, results) before answering.
   * @default true
   */
  sync?: boolean
}

/** The replica's storage on the node's LevelDB; keeps the dead-letter index in step with records. */
export class LevelReplicaStore implements ReplicaStore {
  private readonly store: Store
  private readonly sync: boolean

  constructor (store: Store, init: LevelReplicaStoreInit = {}) {
    this.store = store
    this.sync = init.sync ?? true
  }

  async getRecord (id: string): Promise<TaskRecord | undefined> { return this.store.tasks.get(id) }

  /** One operation's writes (result, lease, record and the dead-letter index) as one group-committed batch. */
  async write (id: string, change: ReplicaWrite, options: { lazy?: boolean } = {}): Promise<void> {
    const ops: BatchOp[] = []
    if (change.result !== undefined) ops.push(this.store.results.putOp(id, change.result))
    if (change.lease !== undefined) ops.push(this.store.leases.putOp(id, change.lease))
    const record = change.record
    if (record !== undefined) {
      if (isDeadLetter(record)) ops.push(this.store.deadLetters.putOp(id, { at: record.final?.at ?? Date.now(), reason: record.final?.reason, capability: record.task.capability }))
      else if (mayHaveDeadLetter(record)) ops.push(this.store.deadLetters.delOp(id))
      ops.push(this.store.tasks.putOp(id, record))
      // the creation index changes only with a new record, or one created at another time (two
      // submits that raced on one idempotency key merge into either's)
      const key = createdKey(record.task.createdAt, id)
      const was = change.previous === undefined ? undefined : createdKey(change.previous.task.createdAt, id)
      if (was !== key) {
        if (was !== undefined) ops.push(this.store.created.delOp(was), this.store.byCapability.delOp(capabilityKey(record.task.capability, was)))
        ops.push(this.store.created.putOp(key, 1), this.store.byCapability.putOp(capabilityKey(record.task.capability, key), 1))
      }
    }
    // a lazy batch still rides with any fsynced one of its group commit
    await this.store.write(ops, { sync: this.sync && options.lazy !== true })
  }

  async getLease (id: string): Promise<LeaseState | undefined> { return this.store.leases.get(id) }
  isDamaged (id: string): boolean { return this.store.damagedTasks.has(id) }
  async getResult (id: string): Promise<StoredResult | undefined> { return this.store.results.get(id) }
  corruptResult (id: string, why: string): void { this.store.reportCorrupt(new CorruptRecordError(`results/${id}: ${why}`, { namespace: 'results', key: id })) }

  async deleteTask (record: TaskRecord): Promise<void> {
    const id = record.task.id
    const created = createdKey(record.task.createdAt, id)
    await this.store.write([this.store.tasks.delOp(id), this.store.leases.delOp(id), this.store.results.delOp(id), this.store.deadLetters.delOp(id), this.store.created.delOp(created), this.store.byCapability.delOp(capabilityKey(record.task.capability, created))])
    // retention forgot the whole task, the unreadable part with it: nothing of it is damaged now
    this.store.damagedTasks.delete(id)
  }

  async * records (): AsyncIterable<TaskRecord> {
    for await (const [, record] of this.store.tasks.entries()) yield record
  }

  async * resultIds (): AsyncIterable<string> {
    yield * this.store.results.keys()
  }
}

/**
 * Whether an index entry may exist for a record that is not a dead letter now: it was dead (and
 * was dropped), or it was redriven (a later generation). A generation-0 task that never died has
 * none, and its writes (two or three a task on every member) no longer carry a delete: a tombstone
 * in LevelDB's log and memtable each time, for a key that was never there.
 */
function mayHaveDeadLetter (record: TaskRecord): boolean {
  return record.generation > 0 || record.final?.state === 'dead'
}
