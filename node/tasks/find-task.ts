import { z } from 'zod'
import { isBadRequest } from '../../protocols/rpc/served.js'
import { QuorumUnavailableError, majority, untilQuorum } from '../../protocols/lease/index.js'
import { canonicalJson, hasValidFinal, hasValidId, mergeRecords, resultMatches, samePlacement, storedResultSchema, taskRecordSchema } from '../../protocols/task/index.js'
import { ignoreStoreFailed } from '../errors.js'
import type { TaskComponents } from './components.js'
import type { Placement, StoredResult, Task, TaskRecord } from '../../protocols/task/index.js'

export interface TaskView {
  record: TaskRecord
  result?: StoredResult
  /**
   * Unfinished, and fewer than a majority of its placement answered the read (a node cut off from
   * the placement): the copy it could read, its own or one member's, may be behind the majority's
   */
  unconfirmed?: true
}

export interface FindOptions {
  /** the whole history, not only the outcome, or the generation a redrive may have started: a certified copy is read from the placement anyway */
  complete?: boolean
  /** ask this one member (by turn) instead of the whole placement */
  oneMember?: number
  /** the first member read is asked to tell this node when the task is final */
  watch?: boolean
  /**
   * Unknown (undefined) only when a majority of the members this node would place the task on
   * answered that they hold no copy; otherwise QuorumUnavailableError. A node cut off from an
   * acknowledged task's placement answered "no task" (404), and a client could submit it again.
   */
  absentByMajority?: boolean
  /**
   * With `complete`: a member found silent (see silentPeerMs) is not waited for. For what shows a
   * history (an event stream, a trace), which may then lack what only that member saw; never for a
   * decision. A paused member held each such read its RPC timeout (5 s), a trace each of its tasks.
   */
  skipSilent?: boolean
}

export const recordsGetAnswer = z.object({ status: z.literal('OK'), record: taskRecordSchema.optional(), result: storedResultSchema.optional() })

/** A member's copy, as its records get answers it. */
interface Copy {
  record: TaskRecord
  result?: StoredResult
}

/** Final and certified here, with its result when completed: nothing to ask anyone. */
export function isSettled (v: { record?: TaskRecord, result?: StoredResult }): boolean {
  const f = v.record?.final
  return f !== undefined && (f.state !== 'completed' || v.result !== undefined)
}

/**
 * A task's own fields (its Task, fixed once made), from this node's copy when it has one, else from
 * its placement: a check of what a task was made with needs no member's answer.
 */
export async function madeTask (c: TaskComponents, id: string): Promise<Task | undefined> {
  return (await c.replica.get(id)).record?.task ?? (await findTask(c, id))?.record.task
}

/** A dead end, which a redrive this node missed (it was down) may have followed with a new generation. */
export function mayBeRedriven (record: TaskRecord | undefined): boolean {
  return record?.final?.state === 'dead'
}

/**
 * What this node knows: from its own store only a certified final state that is over for good
 * (completed or canceled); anything else is asked of the task's placement (found from the local
 * copy, else from the members this node would pick).
 */
export async function findTask (c: TaskComponents, id: string, options: FindOptions = {}): Promise<TaskView | undefined> {
  const local = await c.replica.get(id)
  // a certified copy answers for the outcome; its history may lack an attempt a majority granted
  // without this member, so a reader of the whole history (an event stream, a trace) asks anyway
  if (isSettled(local) && !mayBeRedriven(local.record) && options.complete !== true) return { record: local.record as TaskRecord, result: local.result }
  let record = local.record
  // every member's result: one may hold a losing claim's (its vote, before the commit reached it)
  const results: StoredResult[] = local.result === undefined ? [] : [local.result]
  const me = c.peerId.toString()
  // a member away for a whole move learns the newer placement from its old co-members
  const mine = local.record !== undefined && local.record.final === undefined && local.record.placement.members.includes(me) ? local.record.placement : undefined
  const movedOn = new Map<string, Placement>()
  // a wait asks the first member it reads to tell it of the final state: the notice goes to the submitter alone
  let watching = options.watch !== true
  /** every member's read, asked once: a later round waits for one an earlier round left unanswered */
  const reads = new Map<string, Promise<Copy | undefined>>()
  /** when each member's read was sent */
  const readAt = new Map<string, number>()
  /** members whose answer was taken in, and those of them that held a copy */
  const heard = new Set<string>()
  const held = new Set<string>()
  /** members that answered at all, with a copy or without one (not an RPC failure or a refusal) */
  const answered = new Set<string>()
  const read = async (peer: string): Promise<Copy | undefined> => {
    try {
      const watch = !watching && peer !== me
      if (watch) watching = true
      const to = c.replicaSets.peerId(peer)
      const answer = await c.records(to, { op: 'get', id, ...(watch ? { watch } : {}) })
      // a member from before watches refuses the field: it is read the plain way, and the wait polls it
      const got = recordsGetAnswer.safeParse(watch && isBadRequest(answer) ? await c.records(to, { op: 'get', id }) : answer)
      if (got.success) answered.add(peer)
      return got.success && got.data.record?.task.id === id ? { record: got.data.record, result: got.data.result } : undefined
    } catch {
      return undefined
    }
  }
  const ask = async (peers: string[]): Promise<void> => {
    // a majority's copies hold whatever a majority wrote: a paused member holds a read up no longer,
    // where every member's answer was waited for (its RPC timeout, 5 s); the whole history waits for
    // all, unless skipSilent
    const need = options.complete === true ? Infinity : majority(peers.length) - peers.filter(p => held.has(p)).length
    if (need <= 0) return
    let moved = false
    const take = (answers: Array<{ peer: string, result: Copy | undefined }>): void => {
      for (const { peer, result: copy } of answers) {
        if (heard.has(peer)) continue
        heard.add(peer)
        if (copy === undefined) continue
        held.add(peer)
        if (mine !== undefined && copy.record.placement.epoch > mine.epoch) {
          moved = true
          if (mine.members.includes(peer)) movedOn.set(peer, copy.record.placement)
        }
        record = record === undefined ? copy.record : mergeRecords(record, copy.record)
        if (copy.result !== undefined) results.push(copy.result)
      }
    }
    const waiting = peers.filter(p => !heard.has(p))
    for (const p of waiting) {
      if (reads.has(p)) continue
      readAt.set(p, performance.now())
      reads.set(p, read(p))
    }
    if (options.complete === true && options.skipSilent === true) {
      take(await unlessSilent(waiting, reads, readAt, c))
      return
    }
    const { early, all } = untilQuorum(waiting, async p => await (reads.get(p) as Promise<Copy | undefined>), Math.min(need, waiting.length), copy => copy !== undefined)
    const answers = await early
    take(answers)
    // short of a majority's copies (members gone: the rest is all there is), the outcome certified
    // and no copy read holds its result, or a move this member missed (which takes its co-members'
    // word, agreedMove): the others' answers are waited for
    const copies = answers.filter(a => a.result !== undefined).length
    const final = record?.final
    const resultMissing = final?.state === 'completed' && !results.some(r => resultMatches(final.cert.value, r))
    if (answers.length === waiting.length || !(copies < need || moved || resultMissing)) return
    // a majority of them holds no copy: the rest may hold the only one (a write that reached a
    // minority), and are waited for, unless silent (a paused member held such a read its RPC timeout)
    const absent = options.absentByMajority === true && record === undefined && peers.filter(p => heard.has(p) && answered.has(p) && !held.has(p)).length >= majority(peers.length)
    take(absent ? await unlessSilent(waiting.filter(p => !heard.has(p)), reads, readAt, c) : await all)
  }
  const others = options.oneMember === undefined ? [] : record?.placement.members.filter(m => m !== me) ?? []
  if (options.oneMember !== undefined && others.length > 0) {
    // one member at a time: any member's certified final state is proof enough, and a wait on a
    // task that is still queued asked every member every poll (most of the traffic under overload)
    await ask([others[options.oneMember % others.length] as string])
  } else {
    const guessed = record?.placement.members ?? c.membership.choose(id).members
    await ask(guessed)
    // the record names its placement: ask its members if the guess missed them
    if (record !== undefined) await ask(record.placement.members)
    if (record === undefined && options.absentByMajority === true) {
      const said = guessed.filter(p => answered.has(p)).length
      if (said < majority(guessed.length)) throw new QuorumUnavailableError(`task ${id}: ${said} of the ${guessed.length} members it would be placed on answered, holding no copy; without a majority's word it may exist (try again)`)
    }
  }
  if (record === undefined) return undefined
  const certified = record.final?.cert.value
  const result = results.find(r => resultMatches(certified, r)) ?? results[0]
  const newer = mine === undefined ? undefined : agreedMove(mine, movedOn)
  if (newer !== undefined) await c.replica.adoptMove(id, newer, { missedSeal: true }).catch(ignoreStoreFailed)
  // kept: a certified final state is answered locally from now on
  // a member whose own state of the task is unreadable keeps no copy, but still answers with what
  // the placement holds: a completed task was read there as unknown (404)
  // a store that failed a write (a full disk) keeps no copy, and answers what the placement holds as a damaged one does
  const found = record
  const kept = await c.replica.put(found, result).catch(err => ignoreStoreFailed(err) ?? unkept(found)) ?? (c.replica.isDamaged(id) ? unkept(found) : undefined)
  if (kept === undefined) return undefined
  // the result served is the one the certificate names, by claim and by hash
  const members = kept.placement.members
  const unconfirmed = kept.final === undefined && options.oneMember === undefined && members.filter(p => answered.has(p)).length < majority(members.length)
  return { record: kept, result: resultMatches(kept.final?.cert.value, result) ? result : undefined, ...(unconfirmed ? { unconfirmed: true as const } : {}) }
}

/**
 * How much longer a read waits for `peer`, asked at `readAt`. One already found silent by an earlier
 * read, and heard from nothing since, gets a sixth of the span; none when it was found so within
 * the last sixth (each read that gives up finds it so again): a bulk submit's keyed lookups, eight
 * at a time, each waited a sixth for a paused member (500 keys: 16 s).
 */
function graceLeft (peer: string, readAt: number, silentMs: number, c: TaskComponents): number {
  const suspected = c.heard.suspectedAt(peer)
  if (suspected === undefined) return silentMs - c.heard.quietFor(peer, readAt)
  if (performance.now() - suspected < silentMs / 6) return 0
  return silentMs / 6 - c.heard.quietFor(peer, readAt)
}

/**
 * The answers of `rest`'s reads, once each has answered or gone silent: its read unanswered for
 * silentPeerMs with nothing heard from it since (paused, or cut off), then taken as silent until it
 * is heard from, by the next reads after a sixth of that. A member only slow answers something
 * meanwhile, and is waited for.
 */
async function unlessSilent (rest: string[], reads: Map<string, Promise<Copy | undefined>>, readAt: Map<string, number>, c: TaskComponents): Promise<Array<{ peer: string, result: Copy | undefined }>> {
  const silentMs = c.options.silentPeerMs
  const got: Array<{ peer: string, result: Copy | undefined }> = []
  const pending = new Set(rest)
  let wake: () => void = () => {}
  let done = false
  for (const peer of rest) {
    void (reads.get(peer) as Promise<Copy | undefined>).then(result => {
      if (done) return
      got.push({ peer, result })
      pending.delete(peer)
      wake()
    })
  }
  while (pending.size > 0) {
    // answers already here are read first: an asker behind on its own loop would take its timer for a member's silence
    await new Promise(resolve => setImmediate(resolve))
    const leftMs = Math.max(...[...pending].map(p => graceLeft(p, readAt.get(p) as number, silentMs, c)))
    if (pending.size === 0) break
    if (leftMs <= 0) {
      for (const p of pending) c.heard.suspect(p)
      break
    }
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, leftMs)
      wake = () => { clearTimeout(timer); resolve() }
    })
  }
  done = true
  return got
}

/** A record read from the placement and not kept here, checked as a kept one is: its id, and its certificate. */
function unkept (record: TaskRecord): TaskRecord | undefined {
  if (!hasValidId(record.task)) return undefined
  if (record.final === undefined || hasValidFinal(record)) return record
  const { final: _final, ...unfinished } = record
  return unfinished
}

/**
 * The newer placement a majority of `mine`'s members hold, all the same one: a move made without
 * this member sealed such a majority, so `mine` decides nothing more. One answer is not enough (a
 * stale relay, or a peer that lies, would move this member's copy and what it certifies), nor are
 * answers that differ (an install that failed and a forced move of the same epoch). The majority
 * is of the old placement, this member included, which cannot answer for itself: with R = 3 both
 * other members must answer alike, and while one is down this member keeps its old copy.
 */
export function agreedMove (mine: Placement, reported: Map<string, Placement>): Placement | undefined {
  const all = [...reported.values()]
  const top = Math.max(...all.map(p => p.epoch))
  const newest = all.filter(p => p.epoch === top)
  const first = newest[0]
  if (first === undefined) return undefined
  // the value the move bound the epoch to travels with it: copies that differ there (one peer's
  // word against the rest) have not settled yet, and the next read asks again
  const bound = canonicalJson(first.mustDecide ?? null)
  if (newest.some(p => !samePlacement(p, first) || canonicalJson(p.mustDecide ?? null) !== bound)) return undefined
  return newest.length >= majority(mine.members.length) ? first : undefined
}
