import { QuorumUnavailableError, majority, untilQuorum } from '../../protocols/lease/index.js'
import { putManyAnswerSchema } from '../../protocols/records/index.js'
import { byteLength } from '../../protocols/task/index.js'
import { BULK_CHUNK_BYTES, BULK_CHUNK_RECORDS } from './bulk-limits.js'
import { ignoreStoreFailed } from '../errors.js'
import type { TaskComponents } from './components.js'
import type { Task, TaskRecord } from '../../protocols/task/index.js'

/*
 * A submit's writes of new records to their placements: each record is acknowledged only once a
 * majority of its placement, of its full size, has it on disk.
 */

/** What one member answered to one `put-many`: the ids it stored. */
interface PutManyResult {
  status: string
  reason?: string
  ids: Set<string>
}

/**
 * Stores a new record on its placement: acknowledged only once a majority of the placement, of
 * its full size, has it on disk. This node keeps a copy too (as a member, or as a read cache);
 * `kept`: a copy kept already (before a handoff that fell through).
 */
export async function storeOnPlacement (c: TaskComponents, record: TaskRecord, kept = false): Promise<void> {
  const members = record.placement.members
  const put = async (peer: string): Promise<{ status: string, reason?: string }> => {
    try {
      return await c.records(c.replicaSets.peerId(peer), { op: 'put', record }) ?? { status: 'no answer' }
    } catch (err: any) {
      return { status: 'ERROR', reason: String(err.message) }
    }
  }
  // answered once a majority has it: a paused member must not hold the submit up until its timeout
  const answers = await untilQuorum(members, put, majority(members.length), r => r.status === 'OK').early
  const ok = answers.filter(a => a.result.status === 'OK').length
  const refused = ok < majority(members.length)
  const keep = keepsCopy(record, refused)
  if (keep && !kept) await keepCopy(c, record)
  else if (!keep && kept) await c.replica.forgetCopy(record.task.id, record.placement.epoch)
  if (refused) throw shortfall(members, answers, ok, record.task)
}

/**
 * Whether the submitting node keeps its copy of a new record: stored, or refused with a key, whose
 * copy pins the placement a retry of the key stores the task on again (without it, a retry after
 * membership changed could place the same id elsewhere). No retry can name a refused task without
 * a key (its id holds a random nonce): such a copy was listed pending for ever, though no member
 * may hold it, and members that do decide it.
 */
function keepsCopy (record: TaskRecord, refused: boolean): boolean {
  return !refused || record.task.idempotencyKey !== undefined
}

/**
 * Whether a copy found for an idempotency key may be on no majority: unfinished in its first
 * placement (a refused submit leaves such a copy). A retry stores it again; a moved one was held
 * by a majority, as a move needs one.
 */
export function mayBeUnstored (record: TaskRecord): boolean {
  return record.final === undefined && record.placement.epoch === 0
}

/** A node that is not a member keeps a copy of what it submitted: its waits and reads start here. */
export async function keepCopy (c: TaskComponents, record: TaskRecord): Promise<void> {
  if (record.placement.members.includes(c.peerId.toString())) return
  // a cache: a store that failed a write (a full disk) keeps none, and the task a majority stored stands
  await c.replica.put(record).catch(ignoreStoreFailed)
}

/**
 * `storeOnPlacement` for many records: one chain of `put-many` requests per member, cut into
 * chunks; each record waits, through `untilQuorum`, only for the chunks that carry it, and stops
 * waiting once a majority of its placement stored it. Answers the records that fell short.
 */
export async function storeManyOnPlacements (c: TaskComponents, records: TaskRecord[]): Promise<Map<string, QuorumUnavailableError>> {
  const byMember = new Map<string, TaskRecord[]>()
  for (const record of records) {
    for (const m of record.placement.members) {
      const mine = byMember.get(m) ?? []
      mine.push(record)
      byMember.set(m, mine)
    }
  }
  const sizes = new Map(records.map(r => [r.task.id, byteLength({ record: r })]))
  /** member -> task id -> the answer of the request that carries that task to that member */
  const sent = new Map<string, Map<string, Promise<PutManyResult>>>()
  for (const [member, mine] of byMember) {
    const byTask = new Map<string, Promise<PutManyResult>>()
    sent.set(member, byTask)
    // one member's chunks go one after the other, like anti-entropy's push: no burst of frames to one peer
    let previous: Promise<unknown> = Promise.resolve()
    for (const chunk of chunked(mine, r => sizes.get(r.task.id) ?? 0)) {
      const answer = previous.then(async () => putMany(c, member, chunk))
      previous = answer
      for (const r of chunk) byTask.set(r.task.id, answer)
    }
  }
  const failed = new Map<string, QuorumUnavailableError>()
  await Promise.all(records.map(async record => {
    const id = record.task.id
    const members = record.placement.members
    const put = async (peer: string): Promise<{ status: string, reason?: string }> => {
      const a: PutManyResult = await (sent.get(peer)?.get(id) ?? { status: 'no answer', ids: new Set() })
      return a.ids.has(id) ? { status: 'OK' } : { status: a.status === 'OK' ? 'NOT_STORED' : a.status, ...(a.reason === undefined ? {} : { reason: a.reason }) }
    }
    const answers = await untilQuorum(members, put, majority(members.length), r => r.status === 'OK').early
    const ok = answers.filter(a => a.result.status === 'OK').length
    if (ok < majority(members.length)) failed.set(id, shortfall(members, answers, ok, record.task))
  }))
  // a copy here too, as storeOnPlacement keeps one: a member has it already, others cache it
  const me = c.peerId.toString()
  await Promise.all(records.filter(r => !r.placement.members.includes(me) && keepsCopy(r, failed.has(r.task.id))).map(async r => c.replica.put(r).catch(ignoreStoreFailed)))
  return failed
}

/** One `put-many` to one member; never throws: a failure is the answer's status and reason. */
async function putMany (c: TaskComponents, member: string, records: TaskRecord[]): Promise<PutManyResult> {
  const none = new Set<string>()
  try {
    const answer = await c.records(c.replicaSets.peerId(member), { op: 'put-many', items: records.map(record => ({ record })) })
    if (answer?.status !== 'OK') {
      return { status: typeof answer?.status === 'string' ? answer.status.slice(0, 32) : 'no answer', ...(typeof answer?.reason === 'string' ? { reason: answer.reason.slice(0, 200) } : {}), ids: none }
    }
    const parsed = putManyAnswerSchema.safeParse(answer)
    if (!parsed.success) return { status: 'ERROR', reason: 'bad put-many answer', ids: none }
    // a peer from before storedIds says only how many: all of them, or none that can be named
    const ids = parsed.data.storedIds ?? (parsed.data.stored === records.length ? records.map(r => r.task.id) : [])
    return { status: 'OK', ids: new Set(ids) }
  } catch (err: any) {
    return { status: 'ERROR', reason: String(err.message), ids: none }
  }
}

/** Items in chunks of at most BULK_CHUNK_BYTES (a larger item goes alone) and BULK_CHUNK_RECORDS. */
function chunked<T> (items: T[], bytes: (item: T) => number): T[][] {
  const out: T[][] = []
  let chunk: T[] = []
  let size = 0
  for (const item of items) {
    const b = bytes(item)
    if (chunk.length > 0 && (size + b > BULK_CHUNK_BYTES || chunk.length >= BULK_CHUNK_RECORDS)) {
      out.push(chunk)
      chunk = []
      size = 0
    }
    chunk.push(item)
    size += b
  }
  if (chunk.length > 0) out.push(chunk)
  return out
}

/** A store that fell short of a majority of the placement, with each member's answer. */
function shortfall (members: string[], answers: Array<{ peer: string, result: { status: string, reason?: string } }>, ok: number, task: Task): QuorumUnavailableError {
  const reasons = members.map(m => {
    const a = answers.find(x => x.peer === m)
    // the shortfall is known before every member answers: one still writing (this node, say) has not failed
    return `${m.slice(-6)}: ${a === undefined ? 'no answer when the others fell short (it may still store the task)' : `${a.result.status}${a.result.reason === undefined ? '' : ` (${a.result.reason})`}`}`
  })
  // a member that stored it may still run it once the others are back (anti-entropy carries it): a
  // retry without a key would make a second task
  const retry = task.idempotencyKey !== undefined ? 'retry with the same idempotency key, which names this task again' : 'a retry makes another task (submit with an idempotency key to retry safely)'
  return new QuorumUnavailableError(`task stored on ${ok} of ${members.length} placement members, ${majority(members.length)} needed (${reasons.join('; ')}); a member that stored it may still run it once the others are back: ${retry}`)
}
