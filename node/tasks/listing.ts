import { isDeadLetter, stateOf } from '../../protocols/task/index.js'
import { CAPABILITY } from '../../protocols/task/schema.js'
import { capabilityRange, createdKey, idOfCreatedKey } from '../store/store.js'
import { ignoreStoreFailed } from '../errors.js'
import type { TaskRecord, TaskState } from '../../protocols/task/index.js'
import type { Store } from '../store/store.js'

export interface ListFilter {
  /** blocked: unfinished, and a majority of its placement unreachable past placementMoveAfterMs */
  state?: TaskState | 'blocked'
  capability?: string
  parent?: string
  /** ids starting with these hex digits: a short id, as git takes one */
  idPrefix?: string
  /** @default 100 */
  limit?: number
}

/** The most records a listing reads from LevelDB in one call (at least 32, else what the page still lacks). */
const LIST_CHUNK = 256

/** States only an unfinished task is in: such a listing reads the replica's unfinished copies alone. */
export const UNFINISHED_STATES: ReadonlySet<ListFilter['state']> = new Set(['pending', 'running', 'waiting', 'failed', 'blocked'])

/**
 * The newest tasks this node holds that pass `filter`, newest first (tasks created in the same
 * millisecond, as a bulk submit's are, by id descending): from the creation index, reading
 * records a chunk at a time until the page is full. It read and sorted every record the
 * store held, for every listing (a dashboard lists every few seconds, and a node keeps a week).
 * `among`: the only ids that can pass (the unfinished copies, a parent's subtasks); the others'
 * records are not read, and the index is read only back to the oldest of them. A listing of the
 * running tasks on a node of 100,000 finished ones read every record, 1.7 s a request. Without
 * `among`, a capability's listing reads that capability's part of the index alone.
 */
export async function listTasks (store: Store, filter: ListFilter, isBlocked: (record: TaskRecord) => boolean, among?: ReadonlySet<string>): Promise<TaskRecord[]> {
  const out: TaskRecord[] = []
  // no task can pass; and a capability with a "/" would make the capability index's range another
  // capability's keys, which the scan would then drop as stale
  if (among?.size === 0 || (filter.capability !== undefined && !CAPABILITY.test(filter.capability))) return out
  const limit = filter.limit ?? 100
  const wanted = (record: TaskRecord | undefined): record is TaskRecord => record !== undefined &&
    (filter.capability === undefined || record.task.capability === filter.capability) &&
    (filter.parent === undefined || record.task.parent === filter.parent) &&
    (filter.state === 'blocked' ? isBlocked(record) : (filter.state === undefined || stateOf(record) === filter.state))
  // one capability's part of its own index, when no smaller set is known; else the creation index
  const byCapability = among === undefined && filter.capability !== undefined
  const index = byCapability ? store.byCapability : store.created
  const range = byCapability ? capabilityRange(filter.capability as string) : {}
  // an index key's creation index key: the capability index's follows the capability and a "/"
  const createdOf = (key: string): string => byCapability ? key.slice((filter.capability as string).length + 1) : key
  let keys: string[] = []
  // the ids of `among` met so far: once all are, no older key can pass
  const met = new Set<string>()
  const take = async (): Promise<void> => {
    const created = keys.map(createdOf)
    const records = await store.tasks.getMany(created.map(idOfCreatedKey))
    // an entry without its record (gone, or unreadable), or with a record created at another time
    // (two submits that raced on one idempotency key merge into either's), is stale: dropped here
    const current = records.map(r => r === undefined || (byCapability && r.task.capability !== filter.capability) ? undefined : createdKey(r.task.createdAt, r.task.id))
    const stale = keys.map((_, i) => current[i] !== created[i])
    // tidying only: a store that failed a write (a full disk) still lists, its stale entries skipped here all the same
    if (stale.includes(true)) await store.write(keys.filter((_, i) => stale[i]).map(key => index.delOp(key))).catch(ignoreStoreFailed)
    for (const [i, record] of records.entries()) {
      if (stale[i] === true) {
        // a stale entry newer than its record's own did not meet that id: the scan goes on to it
        const own = current[i]
        if (own !== undefined && own < (created[i] as string)) met.delete(idOfCreatedKey(own))
        continue
      }
      if (wanted(record) && out.length < limit) out.push(record)
    }
    keys = []
  }
  for await (const [key] of index.entries({ ...range, reverse: true })) {
    const id = idOfCreatedKey(createdOf(key))
    if (among !== undefined) {
      if (!among.has(id)) continue
      met.add(id)
    }
    if (filter.idPrefix !== undefined && !id.startsWith(filter.idPrefix)) continue
    keys.push(key)
    if (keys.length >= Math.min(LIST_CHUNK, Math.max(32, limit - out.length))) await take()
    if (out.length >= limit) break
    if (met.size === among?.size) {
      // every id met, if the entries that met them are not stale: known once they are read
      await take()
      if (met.size === among.size) break
    }
  }
  if (out.length < limit) await take()
  return out
}

/**
 * Dead tasks whose entry was not dropped, newest first, at most `limit`: ordered by the dead-letter
 * index's own time of death, and only those on the page read through `read` (the replica's current
 * copy). Every dead letter's record was read for every listing, 10,000 of them 0.7 s.
 */
export async function listDeadLetters (store: Store, read: (id: string) => Promise<TaskRecord | undefined>, limit = Infinity): Promise<TaskRecord[]> {
  const index: Array<{ id: string, at: number }> = []
  for await (const [id, entry] of store.deadLetters.entries()) index.push({ id, at: entry.at })
  index.sort((a, b) => b.at - a.at)
  const out: TaskRecord[] = []
  for (const { id } of index) {
    if (out.length >= limit) break
    const record = await read(id)
    if (record !== undefined && isDeadLetter(record)) out.push(record)
  }
  return out.sort((a, b) => (b.final?.at ?? 0) - (a.final?.at ?? 0))
}
