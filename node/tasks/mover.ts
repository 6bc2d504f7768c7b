import { QuorumUnavailableError, majority } from '../../protocols/lease/index.js'
import { mergeRecords, mustDecideOf, outcomeKey, samePlacement } from '../../protocols/task/index.js'
import { Repeater } from './repeater.js'
import { eachLimited } from './each-limited.js'
import type { TaskComponents } from './components.js'
import type { Answer, ShownVote } from '../../protocols/lease/index.js'
import type { FinalValue, Placement, StoredResult, TaskRecord } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'

export interface MoverStats {
  moved: number
  /** moves that could not seal a majority of the old placement, or found split votes */
  refused: number
  forced: number
  /** checks that left a task in place because a live peer held its lease: it moves once the run ends */
  waitedForRuns: number
}

/** A move that cannot be made safely: the task waits for its members or an operator. */
export class PlacementBlockedError extends Error {
  static override name = 'PlacementBlockedError'
  constructor (message: string) { super(message); this.name = 'PlacementBlockedError' }
}

/** The sealed members' votes split so that the unreachable ones could have certified either value. */
export class SplitVotesError extends PlacementBlockedError {
  static override name = 'SplitVotesError'
  constructor (message: string) { super(message); this.name = 'SplitVotesError' }
}

/** The value the new epoch is bound to is a completed result that no sealed member holds. */
export class OutcomeUnreachableError extends PlacementBlockedError {
  static override name = 'OutcomeUnreachableError'
  constructor (message: string) { super(message); this.name = 'OutcomeUnreachableError' }
}

/**
 * Moves a task's placement when a member has been gone longer than `placementMoveAfterMs`, by a
 * two-phase change of epoch: seal epoch e on a majority of the old members (they stop serving it,
 * hand over record, lease state, vote and result, and remember which move they sealed for, so one
 * move per epoch wins), then install epoch e+1 on a majority of the new members. A vote cast in
 * epoch e travels as the only value epoch e+1 may decide. When no majority of the old placement
 * answers, the task is blocked: listed, and moved only by an operator's `--force-placement`.
 */
export class Mover {
  readonly stats: MoverStats = { moved: 0, refused: 0, forced: 0, waitedForRuns: 0 }
  private readonly c: TaskComponents
  private readonly log: Logger
  private readonly loop: Repeater
  /** why a move of each task (at the epoch it was tried from) was refused for split votes or an unreachable outcome: listed as blocked */
  private readonly split = new Map<string, { epoch: number, reason: string }>()
  /** tasks left in place at the last check for a live holder that had voted: moved if still so */
  private readonly votedAtLastCheck = new Set<string>()

  constructor (components: TaskComponents) {
    this.c = components
    this.log = components.logger('agentmesh:mover')
    this.loop = new Repeater('placement check', () => Math.max(100, Math.floor(this.c.options.placementMoveAfterMs / 4)), async () => this.check(), this.log)
  }

  start (): void {
    this.loop.start()
  }

  async stop (): Promise<void> {
    await this.loop.stop()
  }

  /** Members gone longer than the move threshold. */
  gone (record: TaskRecord): string[] {
    return record.placement.members.filter(m => !this.c.membership.isLive(m) && this.c.membership.silentFor(m) > this.c.options.placementMoveAfterMs)
  }

  /** Why the task cannot move on its own: a majority of its placement is gone. */
  blockedReason (record: TaskRecord): string | undefined {
    if (record.final !== undefined) return undefined
    const gone = this.gone(record)
    const n = record.placement.members.length
    if (n - gone.length >= majority(n)) {
      const split = this.split.get(record.task.id)
      return split?.epoch === record.placement.epoch ? split.reason : undefined
    }
    return `${gone.length} of ${n} placement members unreachable for over ${Math.round(this.c.options.placementMoveAfterMs / 1000)} s`
  }

  /** Whether the last move of the task, from its current epoch, was refused for split votes (or an outcome out of reach). */
  blockedBySplitVotes (record: TaskRecord): boolean {
    return record.final === undefined && this.split.get(record.task.id)?.epoch === record.placement.epoch
  }

  /**
   * Moves every active task whose placement lost a member, when this node is its first live member;
   * and finishes a move that sealed this member's copy and was never installed (split votes blocked
   * it, or its mover stopped), whoever is first: the members the move found gone may be back, and
   * their seals show what they voted. Sealed members serve nothing else, so it must be finished.
   */
  async check (): Promise<void> {
    const me = this.c.peerId.toString()
    for (const id of this.split.keys()) if (!this.c.replica.activeMember.has(id)) this.split.delete(id)
    for (const id of this.votedAtLastCheck) if (!this.c.replica.activeMember.has(id)) this.votedAtLastCheck.delete(id)
    // copies kept outside their placement are not this node's to move (and were most of the reads)
    await eachLimited([...this.c.replica.activeMember], this.c.options.recoveryConcurrency, async id => {
      const { record } = await this.c.replica.get(id)
      if (record === undefined || record.final !== undefined || !record.placement.members.includes(me)) {
        this.split.delete(id)
        return
      }
      const sealed = await this.c.replica.sealedFor(id)
      const gone = this.gone(record)
      if (sealed === undefined) {
        const n = record.placement.members.length
        if (gone.length === 0 || n - gone.length < majority(n)) return
        if (record.placement.members.find(m => this.c.membership.isLive(m)) !== me) return
        // a run held by a live peer goes on with the members left, a majority: sealing the epoch
        // under it ended it and spent its attempt for another member's loss (a task of two minutes
        // or more, one member gone, ran again; with maxAttempts 1, died). It moves once the run
        // ends; a holder whose vote here is still uncommitted at the next check is stuck (the move
        // carries its vote). A lease live here was renewed within leaseMs, whatever the view says
        // of its holder (that flickers with its connections)
        const lease = await this.c.replica.liveLease(id)
        if (lease !== undefined && !gone.includes(lease.holder) && !(lease.voted && this.votedAtLastCheck.has(id))) {
          if (lease.voted) this.votedAtLastCheck.add(id)
          else this.votedAtLastCheck.delete(id)
          this.stats.waitedForRuns++
          return
        }
        this.votedAtLastCheck.delete(id)
      }
      try {
        await this.move(record, gone, false, sealed)
        this.split.delete(id)
      } catch (err: any) {
        this.stats.refused++
        if (err.name === 'SplitVotesError' || err.name === 'OutcomeUnreachableError') this.split.set(id, { epoch: record.placement.epoch, reason: err.message })
        this.log('move of %s not made: %s', id, err.message)
      }
    })
  }

  /**
   * Replaces `gone` members. With `force`, an operator accepts the risk: the seal needs no
   * majority, and split votes are settled by the largest group (both noted in the log).
   */
  async move (record: TaskRecord, gone: string[], force = false, sealedFor?: Placement): Promise<Placement> {
    const old = record.placement
    let next = sealedFor ?? this.nextPlacement(record, gone)
    let sealed = await this.seal(record, next, force)
    // another move of this epoch won its seal: finish that one instead (a forced move overrides it)
    // (only when this one's seal has no majority: a member sealed for a move that lost holds nothing up)
    const winner = sealed.find(a => a.res.status === 'SEALED' && a.res.placement !== undefined)?.res.placement
    if (!force && winner !== undefined && winner.epoch === next.epoch && !samePlacement(winner, next) && sealed.filter(a => a.res.status === 'OK').length < majority(old.members.length)) {
      next = winner
      sealed = await this.seal(record, next, false)
    }
    // the task moved on without this member (its install missed it, or this move started from a
    // stale copy): it takes the newer placement and is done, rather than install the epoch again.
    // Only from a member that holds the newer epoch: its placement carries the value the move bound
    // it to; one sealed for another move names a placement that may never have been made
    const moved = force ? undefined : sealed.filter(a => a.res.status === 'WRONG_EPOCH').map(a => a.res.placement).filter((p): p is Placement => p !== undefined && p.epoch > old.epoch).sort((a, b) => b.epoch - a.epoch)[0]
    if (moved !== undefined) {
      if (await this.c.replica.adoptMove(record.task.id, moved)) return moved
      throw new QuorumUnavailableError(`the task moved on to epoch ${moved.epoch}, and this member's copy did not take it (its own seal did not land)`)
    }
    if (sealedFor !== undefined) {
      // with every old member's seal, votes are frozen and all seen, so any member that retries
      // decides alike; with fewer, only the first live member goes on, as it would have anyway (an
      // install that failed while a member is gone for good is finished so)
      const sealedHere = sealed.filter(a => a.res.status === 'OK').length
      const first = old.members.find(m => this.c.membership.isLive(m)) === this.c.peerId.toString()
      if (sealedHere < old.members.length && !first) throw new QuorumUnavailableError(`a sealed move is finished by the first live member, or with every old member's seal: ${sealedHere} of ${old.members.length}`)
    }
    const ok = sealed.filter(a => a.res.status === 'OK')
    if (ok.length < majority(old.members.length) && !force) throw new QuorumUnavailableError(`sealed on ${ok.length} of ${old.members.length} members`)
    let merged: TaskRecord = record
    for (const a of ok) if (a.res.record !== undefined) merged = mergeRecords(merged, a.res.record)
    let mustDecide = valueToDecide(merged, ok.map(a => a.res.vote).filter((v): v is ShownVote => v !== undefined), old.members.length - ok.length, force)
    const result = ok.map(a => a.res.result).find((r): r is StoredResult => r !== undefined && r.claimId === mustDecide?.claimId)
    // a result voted in an earlier epoch whose holders are all out of reach: no install could take
    // it, so the task waits for them (listed as blocked), unless an operator forces it to run again
    if (mustDecide?.state === 'completed' && result === undefined) {
      if (!force) throw new OutcomeUnreachableError('the outcome this task is bound to is a completed result no sealed member holds: its holders are out of reach')
      this.log.error('forced placement of %s drops the outcome it was bound to: no sealed member holds its result', record.task.id)
      mustDecide = undefined
    }
    if (mustDecide !== undefined) next = { ...next, mustDecide: { generation: merged.generation, value: mustDecide } }
    merged = { ...merged, placement: next, previous: [...(merged.previous ?? []), old].slice(-16), updatedAt: Date.now() }
    const installs = await this.c.leases.ask(next.members, { op: 'install', id: record.task.id, epoch: next.epoch, record: merged, ...(result === undefined ? {} : { result }), ...(mustDecide === undefined ? {} : { mustDecide }) })
    const installed = installs.filter(a => a.res.status === 'OK' || a.res.status === 'VOTED').length
    if (installed < majority(next.members.length)) throw new QuorumUnavailableError(`installed on ${installed} of ${next.members.length} new members`)
    if (mustDecide !== undefined) await this.c.leases.certifyAndCommit({ id: record.task.id, placement: next }, merged.generation, installs, result)
    if (force) {
      this.stats.forced++
      this.log.error('forced placement of %s: epoch %d -> %d on %s (sealed on %d of %d old members)', record.task.id, old.epoch, next.epoch, next.members.join(','), ok.length, old.members.length)
    } else {
      this.stats.moved++
    }
    this.log('moved %s to epoch %d: %s', record.task.id, next.epoch, next.members.join(','))
    // a member left out (or one the install missed) takes the new placement on its own next check
    if (!next.members.includes(this.c.peerId.toString()) && !await this.c.replica.adoptMove(record.task.id, next)) await this.c.replica.put(merged)
    return next
  }

  /** The placement that replaces `gone` members with live peers, the others staying. */
  private nextPlacement (record: TaskRecord, gone: string[]): Placement {
    const old = record.placement
    const stay = old.members.filter(m => !gone.includes(m))
    const fresh = this.c.membership.replacements(record.task.id, old.members).slice(0, gone.length)
    if (stay.length + fresh.length === 0) throw new PlacementBlockedError('no live peer to move the task to')
    return { epoch: old.epoch + 1, members: [...stay, ...fresh] }
  }

  private async seal (record: TaskRecord, next: Placement, force: boolean): Promise<Answer[]> {
    return this.c.leases.ask(record.placement.members, { op: 'seal', id: record.task.id, epoch: record.placement.epoch, next, ...(force ? { force } : {}) })
  }
}

/**
 * The value a move binds the new epoch to, from the old epoch's copies merged (`merged`) and the
 * votes its seal collected for their generation (see decidable). An epoch bound already passes its
 * value on: its members voted nothing else, but the votes it gathered may be out of reach.
 */
export function valueToDecide (merged: TaskRecord, votes: ShownVote[], unanswered: number, force: boolean): FinalValue | undefined {
  const current = votes.filter(v => v.generation === merged.generation)
  return decidable(current, unanswered, majority(merged.placement.members.length), force) ?? mustDecideOf(merged)
}

/**
 * The one value the new epoch may decide, from the votes the seal collected: a value that its votes
 * and the members that did not answer could have made a majority may be certified somewhere, so it
 * is the one; two such values block the move (unless forced: then the largest group). When no value
 * can have been certified, the largest group is kept rather than the work run again.
 */
function decidable (votes: ShownVote[], unanswered: number, need: number, force: boolean): FinalValue | undefined {
  const groups = new Map<string, { value: FinalValue, n: number }>()
  for (const v of votes) {
    const key = outcomeKey(v.value)
    groups.set(key, { value: v.value, n: (groups.get(key)?.n ?? 0) + 1 })
  }
  const ranked = [...groups.entries()].sort(([ka, a], [kb, b]) => b.n - a.n || (ka < kb ? -1 : 1)).map(([, g]) => g)
  const possible = ranked.filter(g => g.n + unanswered >= need)
  if (possible.length > 1 && !force) throw new SplitVotesError(`votes split over ${possible.length} outcomes, either of which the unreachable members could have certified`)
  // a possible value is the largest group too: the bar to be possible falls with the group's size
  return ranked[0]?.value
}
