import { RECORD_HASHING, bucketHashes, differingBuckets, digitsOf } from '../replica/digest.js'
import { byteLength } from '../task/index.js'
import { countServed, parseRequest } from '../rpc/served.js'
import { MAX_CHILDREN, MAX_PROGRESS_ANSWER_BYTES, recordsRequestSchema } from './messages.js'
import type { HandoffOutcome, OfferItem, ProgressItem, PutManyAnswer } from './messages.js'
import type { TaskNotice } from '../gossip/messages.js'
import type { TaskRecord } from '../task/record.js'
import type { HandlerStats } from '../lease/handler.js'
import type { Replica } from '../replica/replica.js'
import type { PeerId } from '@libp2p/interface'

export interface RecordsHandlerInit {
  /** this node's own requests: values are copied after the check (they may be an agent's objects) */
  copyRequests?: boolean
  /** ids of the records this node holds that `peer` should hold too (both are in their replica set) */
  sharedWith: (peer: string) => Iterable<string>
  /** this node's bucket hashes of what it shares with `peer` (its cached digest), instead of computing them from sharedWith */
  digest?: (peer: string, digits: number) => Record<string, string>
  /** the hash anti-entropy compares for an id (its content's, or a mark that it is in flux). @default the content's */
  comparableHash?: (id: string) => string | undefined
  /** which of a peer's [id, hash] entries this node should be sent. @default those whose content hash differs */
  needed?: (entries: Array<[string, string]>) => string[]
  /** tasks offered to this node to run: answers the ids taken. Without it, none is. */
  takeOffers?: (items: OfferItem[], from: string) => string[]
  /** a new task its submitter `from` hands to this node to claim and run: whether it took it. Without it, none is. */
  takeHandoff?: (record: TaskRecord, from: string, tellWithinMs?: number) => Promise<HandoffOutcome>
  /** `from` waits on the task `id`, unfinished here: tell it when the final state is stored here */
  watch?: (id: string, from: string) => void
  /** `from` read the task final here: nothing to tell it */
  unwatch?: (id: string, from: string) => void
  /**
   * notices sent to this node directly (it waits on the tasks): hints, as gossiped ones. `sender`:
   * the peer the connection proves sent them
   */
  applyNotices?: (notices: TaskNotice[], sender: string) => void
  /** progress of tasks this node submitted, from `from` (the authenticated peer), in the order sent */
  applyProgress?: (events: ProgressItem[], from: string) => void
  /** the progress this node holds of a task it submitted */
  recentProgress?: (id: string) => Array<ProgressItem & { peer: string }>
  /** ids of subtasks of `id` this node holds (at most MAX_CHILDREN) */
  children?: (id: string) => Promise<string[]>
}

/** The server side of `/agentmesh/records/1.0.0`. */
export function recordsHandler (replica: Replica, stats: HandlerStats, init: RecordsHandlerInit) {
  return async (body: unknown, from: PeerId): Promise<unknown> => {
    // this node's own requests carry its agents' objects (a subtask's input): kept as a copy
    const parsed = parseRequest(recordsRequestSchema, body, init.copyRequests === true)
    if (!parsed.ok) {
      stats.badRequests++
      return { status: 'ERROR', reason: `bad request: ${parsed.reason}` }
    }
    const req = parsed.data
    countServed(stats, 'records', req.op)
    switch (req.op) {
      case 'put': {
        // only a member keeps a task for others: a submit to the wrong peer is refused, not cached
        if (!replica.isMember(req.record)) return { status: 'NOT_MEMBER' }
        const kept = await replica.put(req.record, req.result)
        return kept === undefined ? { status: 'ERROR', reason: 'task id does not match its content' } : { status: 'OK' }
      }
      case 'get': {
        // registered before the read, so a final state stored meanwhile is told; a task whose
        // record has not reached this member yet is watched too
        if (req.watch === true) init.watch?.(req.id, from.toString())
        const copy = await replica.get(req.id)
        if (req.watch === true && copy.record?.final !== undefined) init.unwatch?.(req.id, from.toString())
        return { status: 'OK', ...copy }
      }
      case 'pending': {
        // when the first task left out as too young comes of age: an asker without a copy of it
        // learns it only here, and its pulls back off for minutes when they find nothing
        const young: { inMs?: number } = {}
        const tasks = await replica.claimable(new Set(req.capabilities), req.limit, req.minAgeMs, young)
        return { status: 'OK', tasks, ...(young.inMs === undefined ? {} : { youngDueInMs: Math.max(0, Math.ceil(young.inMs)) }) }
      }
      case 'digest': {
        if ((req.hashing ?? 1) !== RECORD_HASHING) return { status: 'OK', differ: [] }
        // buckets as fine as the asker's: it chose them for the ids it holds
        const digits = digitsOf(req.buckets)
        const mine = init.digest?.(from.toString(), digits) ?? bucketHashes(init.sharedWith(from.toString()), init.comparableHash ?? (id => replica.hashes.get(id)), digits)
        return { status: 'OK', differ: differingBuckets(mine, req.buckets) }
      }
      case 'ids': return { status: 'OK', need: init.needed?.(req.entries) ?? req.entries.filter(([id, hash]) => replica.hashes.get(id) !== hash).map(([id]) => id) }
      case 'put-many': {
        // all at once: the store group-commits writes of one turn, so a batch costs a few fsyncs, not one each
        const kept = await Promise.all(req.items.map(async item => replica.isMember(item.record) && await replica.put(item.record, item.result) !== undefined))
        // which ids, not only how many: a bulk submit counts each task's majority on its own
        const storedIds = req.items.filter((_, i) => kept[i]).map(item => item.record.task.id)
        return { status: 'OK', stored: storedIds.length, storedIds } satisfies PutManyAnswer
      }
      case 'handoff': {
        const { outcome, notice } = await init.takeHandoff?.(req.record, from.toString(), req.tell) ?? { outcome: 'declined' }
        return { status: 'OK', taken: outcome === 'taken', ...(outcome === 'busy' ? { busy: true } : {}), ...(notice === undefined ? {} : { notice }) }
      }
      case 'offer': return { status: 'OK', taken: init.takeOffers?.(req.items, from.toString()) ?? [] }
      case 'notify': {
        // the sender is the authenticated peer at the other end, whatever the notice says
        const sender = from.toString()
        init.applyNotices?.(req.notices.map(n => ({ ...n, from: sender })), sender)
        return { status: 'OK' }
      }
      case 'progress': {
        init.applyProgress?.(req.events, from.toString())
        return { status: 'OK' }
      }
      case 'progress-recent': {
        const all = init.recentProgress?.(req.id) ?? []
        const since = req.since
        const from = since === undefined ? 0 : all.findIndex(u => u.claimId === since.claimId && u.seq === since.seq) + 1
        const events: typeof all = []
        let bytes = 0
        for (const u of all.slice(from)) {
          bytes += byteLength(u)
          if (bytes > MAX_PROGRESS_ANSWER_BYTES && events.length > 0) return { status: 'OK', events, more: true }
          events.push(u)
        }
        return { status: 'OK', events }
      }
      case 'children': return { status: 'OK', ids: (await init.children?.(req.id) ?? []).slice(0, MAX_CHILDREN) }
    }
  }
}
