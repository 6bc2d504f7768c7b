import { DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_CAP_MS } from '../lease/constants.js'
import { EMPTY_LEASE, clearHolder, currentVote, endClaimForMove, expireLapsed, isLive, transition } from '../task/machine.js'
import { failedAttempts, hasValidFinal, isWaiting, mustDecideOf, resultMatches, stateOf } from '../task/record.js'
import { hasValidId } from '../task/schema.js'
import { KeyedMutex } from '../task/store.js'
import { commitShown, countAnswer, isNewRecord, shownWith, signVote, verifyShownVote, voteGranted } from './lease-answer.js'
import { mergeCopy } from './merge-copy.js'
import { endedAt } from './expiries.js'
import { ReplicaIndex } from './replica-index.js'
import { BatchSigner, DEFAULT_VOTE_SIGN_BATCH_MAX } from '../task/vote-batch.js'
import type { RecordHashes } from './digest.js'
import type { LeaseRequest, LeaseResponse } from '../lease/messages.js'
import type { MachineEnv, ReplicaTaskState, Transition } from '../task/machine.js'
import type { TallyRow } from './final-tally.js'
import type { Placement, TaskRecord, TaskState } from '../task/record.js'
import type { Task } from '../task/schema.js'
import type { ReplicaStore, ReplicaWrite, StoredResult } from '../task/store.js'
import type { TrustedVote } from '../task/certificate.js'
import type { ReplicaInit, ReplicaStats, Undecided } from './replica-init.js'

export type { ReplicaInit, ReplicaStats, Undecided } from './replica-init.js'

/** Why a member refuses every request about a task whose state it cannot read. */
export const DAMAGED_REASON = 'this member\'s copy of the task is unreadable on disk (see its log): it takes no part in this task'

/** Completed copies without their result a member keeps asking about at once (normally none). */
export const MAX_WANTED_RESULTS = 10_000

/**
 * One peer's part of every placement it is a member of. Every change to a task's state goes
 * through `transition` (protocols/task/machine.ts) under a per-task lock, and is on disk before it
 * is answered. Records from peers merge in only with a valid id, and final states only with a
 * valid certificate.
 */
export class Replica {
  readonly stats: ReplicaStats = { grants: 0, denials: 0, staleResults: 0, results: 0, votes: 0, voteSignatures: 0, refusedRecords: 0, missedMoves: 0, damagedRefusals: 0 }
  /** ids of records without a final state */
  readonly active: Set<string>
  /** those of them whose placement this node is a member of: what sweeps look at */
  readonly activeMember: ReadonlySet<string>
  /** dead letters kept outside their placement (see ReplicaIndex.deadCopies) */
  readonly deadCopies: Map<string, number>
  /** a hash of each record's content, by id: anti-entropy compares these instead of records */
  readonly hashes: RecordHashes
  /** each record's current placement members, by id: who shares it with whom */
  readonly members: ReadonlyMap<string, readonly string[]>
  readonly me: string
  /** the states and indexes kept in memory, written through on every change */
  private readonly idx: ReplicaIndex
  private readonly store: ReplicaStore
  private readonly lock = new KeyedMutex()
  /** active tasks stamped in this member's future, and when this member first saw them so (changedAt) */
  private readonly seenAhead = new Map<string, { stamp: number, at: number }>()
  private readonly init: ReplicaInit
  private readonly backoff: { baseMs: number, capMs: number }
  private readonly now: () => number
  private readonly retentionMs: number
  private readonly signer: BatchSigner
  /**
   * Completed copies of this member's placements held without the result their certificate names
   * (taken from a notice or a read that brought none, having never granted; or found so at a start,
   * see load): anti-entropy asks the other members for it (wantedResults, lacksResult). In memory
   * only, and at most MAX_WANTED_RESULTS.
   */
  private readonly resultsWanted = new Set<string>()

  constructor (store: ReplicaStore, init: ReplicaInit) {
    this.store = store
    this.init = init
    this.me = init.me
    this.backoff = { baseMs: init.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS, capMs: init.backoffCapMs ?? DEFAULT_BACKOFF_CAP_MS }
    this.now = init.now ?? Date.now
    this.retentionMs = init.retentionMs ?? 7 * 24 * 3600_000
    this.signer = new BatchSigner(init.sign, init.voteSignBatchMax ?? DEFAULT_VOTE_SIGN_BATCH_MAX, () => { this.stats.voteSignatures++ })
    this.idx = new ReplicaIndex(init.me, init.recentFinished ?? 4_096, init.recentFinishedBytes ?? 32 * 1024 * 1024)
    this.active = this.idx.active
    this.activeMember = this.idx.activeMember
    this.deadCopies = this.idx.deadCopies
    this.hashes = this.idx.hashes
    this.members = this.idx.members
  }

  /** Unfinished tasks of this member's placements: what its submits are admitted against. */
  get activeHere (): number {
    return this.idx.activeMember.size
  }

  /** Past retention: a completed or canceled task, or a dead one whose entry was dropped. */
  isExpired (record: TaskRecord, now = this.now()): boolean {
    const ended = endedAt(record)
    return ended !== undefined && ended + this.retentionMs < now
  }

  /**
   * Deletes every record past retention; returns how many. Reads only those the expiry queue says
   * may be, against one reading of the clock (a clock stepped back mid-sweep must not drop an entry).
   */
  async expireRetained (): Promise<number> {
    const now = this.now()
    let n = 0
    let failure: unknown
    for (const e of this.idx.expiries.takeDue(now - this.retentionMs - 1)) {
      try {
        await this.lock.run(e.id, async () => {
          const record = await this.store.getRecord(e.id)
          if (record === undefined || !this.isExpired(record, now)) return
          await this.store.deleteTask(record)
          this.idx.drop(record)
          n++
        })
      } catch (err) {
        // kept for the next sweep (a full disk), and the others go on
        this.idx.expiries.push(e.id, e.at)
        failure ??= err
      }
    }
    if (failure !== undefined) throw failure
    return n
  }

  /**
   * Deletes this node's copy of a task it holds outside the task's placement, unfinished, in
   * `epoch`: what a submit that no member stored leaves. A member's copy, a finished one or a moved
   * one is kept: true if deleted.
   */
  async forgetCopy (id: string, epoch: number): Promise<boolean> {
    return this.lock.run(id, async () => {
      const record = await this.store.getRecord(id)
      // one moved since it was read (to a placement this node may be in) is not what was asked about
      if (record === undefined || record.final !== undefined || this.isMember(record) || record.placement.epoch !== epoch) return false
      await this.store.deleteTask(record)
      this.idx.drop(record)
      return true
    })
  }

  /**
   * Indexes every stored record, and notes the completed member copies stored without any result
   * (taken from a notice or a read that brought none before a restart, or a power loss that kept a
   * later write of the record but not the result's), so anti-entropy asks for them as it does for
   * those noted since. Both lists come in id order, walked side by side; a stored result of a
   * losing claim is told only by reading it, which a start does not do: a read of the task finds
   * it. One noted wrongly (a damaged record) costs a local read: copyLackingResult drops it before
   * anything is asked.
   */
  async load (): Promise<void> {
    const results = this.store.resultIds()[Symbol.asyncIterator]()
    try {
      let result = await results.next()
      for await (const record of this.store.records()) {
        this.idx.index(record)
        const id = record.task.id
        while (result.done !== true && result.value < id) result = await results.next()
        const hasResult = result.done !== true && result.value === id
        if (!hasResult && this.keepsResult(record) && !this.isExpired(record)) this.wantResult(id, true)
      }
    } finally {
      await results.return?.()
    }
  }

  /** Subtasks of a task this node keeps a record of: a trace asks for them, and a scan of the store per ask was any peer's to trigger. */
  childrenOf (parent: string): string[] {
    return this.idx.childrenOf(parent)
  }

  /**
   * Kept tasks this node is a placement member of, counted by state and capability: finished ones
   * from counts kept on every write, unfinished ones (in memory, and few) read now, since whether a
   * task still waits depends on the clock.
   */
  async tally (): Promise<TallyRow[]> {
    const unfinished: Array<{ state: TaskState, capability: string }> = []
    for (const id of [...this.active]) {
      // copies kept for other placements are not counted: not read from disk either
      if (this.members.get(id)?.includes(this.me) !== true) continue
      const record = (this.idx.cached(id) ?? await this.load1(id, false)).record
      if (record === undefined || record.final !== undefined || !this.isMember(record)) continue
      unfinished.push({ state: stateOf(record, this.now()), capability: record.task.capability })
    }
    return this.idx.finals.entries(unfinished)
  }

  isMember (record: TaskRecord): boolean {
    return record.placement.members.includes(this.me)
  }

  /**
   * Merges a record in (a submit, a repair, a copy a read brought) and stores it durably. A forged
   * id is refused; a final state without a valid certificate is dropped from the copy first.
   */
  async put (incoming: TaskRecord, result?: StoredResult, trusted?: TrustedVote): Promise<TaskRecord | undefined> {
    if (!hasValidId(incoming.task)) {
      this.stats.refusedRecords++
      return undefined
    }
    let record = incoming
    if (record.final !== undefined && !hasValidFinal(record, record.final, trusted)) {
      this.stats.refusedRecords++
      const { final: _f, ...rest } = record
      record = rest
    }
    return this.lock.run(record.task.id, async () => {
      const before = await this.load1(record.task.id)
      if (this.isDamaged(record.task.id)) {
        this.stats.damagedRefusals++
        return undefined
      }
      const m = mergeCopy(before, record, result, { me: this.me, isExpired: r => this.isExpired(r), refused: () => { this.stats.refusedRecords++ }, trusted, now: this.now(), maxRetryDelayMs: this.backoff.capMs })
      if (!m.store) return m.record
      await this.persist(before, { ...before, record: m.record, result: m.result })
      return m.record
    })
  }

  /** This replica's copy: the record and, once final, the certified result (or a kept one, flagged). */
  async get (id: string): Promise<{ record?: TaskRecord, result?: StoredResult }> {
    const cached = this.idx.cached(id)
    // every stored record is indexed: an unknown id has nothing on disk to read
    if (cached === undefined && (!this.hashes.has(id) || this.isDamaged(id))) return {}
    // record first: a result is written before the record that says completed
    const record = cached !== undefined ? cached.record : await this.store.getRecord(id)
    const result = cached !== undefined ? cached.result : await this.store.getResult(id)
    // a kept result counts only if it is the one the certificate names, by claim and by hash
    const matches = result !== undefined && record !== undefined && resultMatches(record.final?.cert.value, result)
    // the certified claim's own result that hashes to something else was altered on disk (a losing claim's is only stale)
    if (!matches && cached === undefined && result !== undefined && record?.final !== undefined && result.claimId === record.final.cert.value.claimId) {
      this.store.corruptResult?.(id, 'its value does not hash to what the certificate names')
    }
    return { record, result: matches ? result : undefined }
  }

  /** Changes with every record written or dropped here: what a digest over the index is cached against. */
  get indexVersion (): number {
    return this.idx.version
  }

  /** When an unfinished task's record last changed, by its own stamp; undefined for a finished or unknown one. */
  liveChangedAt (id: string): number | undefined {
    return this.idx.liveState(id)?.record?.updatedAt
  }

  /**
   * Tasks of which this member holds a placement share and would grant a lease now: the pull path.
   * `young`, when given, gets in how many ms the first task left out as younger than `minAgeMs`
   * comes of age.
   */
  async claimable (capabilities: Set<string>, limit: number, minAgeMs = 0, young?: { inMs?: number }): Promise<Array<{ task: Task, placement: Placement }>> {
    const now = this.now()
    const out: Array<{ task: Task, placement: Placement }> = []
    for (const id of this.activeMember) {
      if (out.length >= limit) break
      const record = await this.claimableRecord(id, now)
      if (record === undefined || !capabilities.has(record.task.capability)) continue
      const changed = this.changedAt(id, Math.max(record.updatedAt, record.notBefore ?? 0), now)
      if (changed > now - minAgeMs) {
        if (young !== undefined) young.inMs = Math.min(young.inMs ?? Infinity, changed + minAgeMs - now)
        continue
      }
      out.push({ task: record.task, placement: record.placement })
    }
    for (const id of this.seenAhead.keys()) if (!this.active.has(id)) this.seenAhead.delete(id)
    return out
  }

  /**
   * When a task last changed, by this member's clock: its stamp, or for a stamp in this member's
   * future (a peer's clock ahead) the time this member first saw it so. The pull path waited out
   * the skew otherwise: a task stamped an hour ahead was not pulled for an hour.
   */
  private changedAt (id: string, stamp: number, now: number): number {
    if (stamp <= now) {
      this.seenAhead.delete(id)
      return stamp
    }
    // a later change stamped ahead again is a new change: seen from now
    const seen = this.seenAhead.get(id)
    if (seen?.stamp === stamp) return seen.at
    this.seenAhead.set(id, { stamp, at: now })
    return now
  }

  /** The peer holding a live lease on the task by this member's grant and clock, if any, and whether this member voted on its outcome. */
  async liveLease (id: string): Promise<{ holder: string, voted: boolean } | undefined> {
    const s = await this.load1(id, false)
    const holder = s.lease.holder
    return holder !== undefined && isLive(s.lease, this.now()) ? { holder, voted: currentVote(s) !== undefined } : undefined
  }

  /** The placement this member's copy is sealed for: a move that sealed it and has not installed yet. */
  async sealedFor (id: string): Promise<Placement | undefined> {
    const s = await this.load1(id, false)
    const record = s.record
    if (record === undefined || record.final !== undefined || (s.lease.sealedEpoch ?? -1) < record.placement.epoch) return undefined
    return s.lease.sealedFor
  }

  /**
   * A move this member sealed for was made without it (its install did not reach this member, or
   * left it out): takes the newer placement, as a member with no vote in it yet, or as a copy when
   * left out. Only a copy sealed at its current epoch moves this way: a sealed member serves nothing.
   * With `missedSeal`, a member that was away for the whole move (neither sealed nor installed) takes
   * it the same way, once a majority of its co-members showed it the same newer placement: that
   * epoch exists only once a majority of this one sealed (or an operator forced it), so this one can
   * decide nothing more, and a member kept on it answered reads with a stale placement and voted in
   * an epoch no majority would join.
   */
  async adoptMove (id: string, placement: Placement, { missedSeal = false } = {}): Promise<boolean> {
    return this.lock.run(id, async () => {
      const s = await this.load1(id)
      const r = s.record
      if (r === undefined || r.final !== undefined || placement.epoch <= r.placement.epoch) return false
      const sealed = (s.lease.sealedEpoch ?? -1) >= r.placement.epoch
      if (!sealed && !(missedSeal && r.placement.members.includes(this.me))) return false
      // a claim granted here that the missed seal would have ended ends as the seal ends it: left
      // running, it named a holder that no majority backs (a sealed member has no claim left)
      const ended = endClaimForMove(s, { now: this.now(), backoff: this.backoff }, placement.epoch)
      const e = ended.record as TaskRecord
      const record = { ...e, placement, previous: [...(e.previous ?? []), e.placement].slice(-16), updatedAt: this.now() }
      const { vote: _v, ...lease } = clearHolder(ended.lease)
      await this.persist(s, { ...ended, record, lease })
      if (!sealed) this.stats.missedMoves++
      return true
    })
  }

  /** The record if this member would grant a lease on it now. */
  async claimableRecord (id: string, now = this.now()): Promise<TaskRecord | undefined> {
    const s = await this.load1(id, false)
    const record = s.record
    if (record === undefined || record.final !== undefined || !this.isMember(record) || currentVote(s) !== undefined || mustDecideOf(record) !== undefined) return undefined
    if ((s.lease.sealedEpoch ?? -1) >= record.placement.epoch) return undefined
    if (isLive(s.lease, now) || (record.notBefore ?? 0) > now || isWaiting(record, now) || failedAttempts(record) >= record.task.maxAttempts) return undefined
    return record
  }

  /**
   * Expires lapsed leases here (a failed attempt, retried after a backoff) and lists the tasks that
   * need a majority's decision: out of attempts, past the deadline by this member's clock, or voted
   * on but not final. Deciding them is the sweeper's job, by a majority operation.
   */
  async sweep (): Promise<{ changed: TaskRecord[], undecided: Undecided[] }> {
    const changed: TaskRecord[] = []
    const undecided: Undecided[] = []
    const env = { now: this.now(), backoff: this.backoff }
    // a copy kept outside its placement has no lease here to expire and nothing for it to decide:
    // under overload tens of thousands of them were read every sweep
    for (const id of [...this.activeMember]) {
      await this.lock.run(id, async () => {
        const s = await this.load1(id)
        if (s.record === undefined || !this.isMember(s.record)) return
        const next = expireLapsed(s, env)
        if (next !== s) {
          await this.persist(s, next)
          changed.push(next.record as TaskRecord)
        }
        const r = next.record as TaskRecord
        if (r.final !== undefined || (next.lease.sealedEpoch ?? -1) >= r.placement.epoch) return
        const voted = currentVote(next) !== undefined
        // an epoch a move bound to a value is decided, never run: the first live member asks for the votes
        if (voted || mustDecideOf(r) !== undefined || (!isLive(next.lease, env.now) && (failedAttempts(r) >= r.task.maxAttempts || env.now > r.task.deadline))) undecided.push({ record: r, voted })
      })
    }
    return { changed, undecided }
  }

  /** Serves one lease-protocol request: load, transition, sign a vote if one was cast, persist, answer. */
  async handleLease (from: string, req: LeaseRequest): Promise<LeaseResponse> {
    if (req.op === 'acquire' && req.record !== undefined && !isNewRecord(req.record, req.id, req.epoch, this.me)) {
      this.stats.refusedRecords++
      return { status: 'ERROR', reason: 'the record with a claim is not a new task of this placement' }
    }
    // an install brings a whole record, as a put does: one whose id does not hash its content is refused alike
    if (req.op === 'install' && (req.record.task.id !== req.id || !hasValidId(req.record.task))) {
      this.stats.refusedRecords++
      return { status: 'ERROR', reason: 'the installed record is not the task its id names' }
    }
    return this.lock.run(req.id, async () => {
      const loaded = await this.load1(req.id)
      if (this.isDamaged(req.id)) {
        this.stats.damagedRefusals++
        return { status: 'ERROR', reason: DAMAGED_REASON }
      }
      // a submit that claims the task at once brings its record: stored with the grant, one write
      const s = req.op === 'acquire' && req.record !== undefined && loaded.record === undefined ? { ...loaded, record: req.record } : loaded
      // the holder shows its own vote (when it is a member), and a commit carries it: from its signer,
      // taken for this request unchecked; the votes it relays from others are checked
      const fromSigner = new Set(shownWith(req).filter(v => v.peer === from).map(v => v.sig))
      const trustedVote = fromSigner.size === 0 ? undefined : (peer: string, sig: string) => peer === from && fromSigner.has(sig)
      const env: MachineEnv = { now: this.now(), me: this.me, from, backoff: this.backoff, verifyVote: verifyShownVote, ...(trustedVote === undefined ? {} : { trustedVote }) }
      const t = transition(s, req, env)
      if (await signVote(t, this.me, this.signStatement)) this.stats.votes++
      const done = req.op === 'vote' && req.shown !== undefined ? commitShown(t, req.shown, env) : req.op === 'acquire' && req.vote !== undefined ? await this.votedWithGrant(t, req, env) : t
      await this.persist(loaded, done.state)
      countAnswer(this.stats, req, done.reply)
      return done.reply
    })
  }

  /** Whether this member's copy is one that holds a certified result: completed, and of its placement. */
  private keepsResult (record: TaskRecord | undefined): record is TaskRecord & { final: NonNullable<TaskRecord['final']> } {
    return record?.final?.state === 'completed' && this.isMember(record)
  }

  private wantResult (id: string, wanted: boolean): void {
    if (!wanted) this.resultsWanted.delete(id)
    else if (this.resultsWanted.size < MAX_WANTED_RESULTS) this.resultsWanted.add(id)
  }

  /**
   * Up to `limit` completed copies held here without their certified result, to be asked for; each
   * goes to the back, so ones no member can give do not take every round's places.
   */
  wantedResults (limit: number): string[] {
    const asked: string[] = []
    for (const id of this.resultsWanted) {
      if (asked.length >= limit) break
      asked.push(id)
    }
    const out: string[] = []
    for (const id of asked) {
      this.resultsWanted.delete(id)
      // deleted since (retention): nothing to repair
      if (!this.hashes.has(id)) continue
      this.resultsWanted.add(id)
      out.push(id)
    }
    return out
  }

  /**
   * This member's completed copy of `id` while it still lacks its certified result. One that does
   * not (stored since, by any path), or is gone, damaged, past retention or not this member's, is
   * wanted no more: asked for each round, it cost a request for nothing.
   */
  async copyLackingResult (id: string): Promise<TaskRecord | undefined> {
    const s = await this.load1(id, false)
    const record = s.record
    if (this.keepsResult(record) && !this.isDamaged(id) && !this.isExpired(record) && !resultMatches(record.final.cert.value, s.result)) return record
    this.resultsWanted.delete(id)
    return undefined
  }

  /** Whether this member's completed copy of `id` still lacks its certified result (copyLackingResult). */
  async lacksResult (id: string): Promise<boolean> {
    return await this.copyLackingResult(id) !== undefined
  }

  private readonly signStatement = async (statement: Uint8Array): Promise<string> => await this.signer.signStatement(statement)

  private async votedWithGrant (t: Transition, req: Extract<LeaseRequest, { op: 'acquire' }>, env: MachineEnv): Promise<Transition> {
    const { done, signed } = await voteGranted(t, req, env, this.me, this.signStatement)
    if (signed) this.stats.votes++
    return done
  }

  /** A task's state; `locked` callers (under the task's lock) may fill the cache, others only read it. */
  private async load1 (id: string, locked = true): Promise<ReplicaTaskState> {
    const cached = this.idx.cached(id)
    if (cached !== undefined) return cached
    // every stored record is indexed (load, index), and a lease is written only with its record:
    // a task not in the index has nothing on disk. A damaged task reads as unknown to every caller
    // but the two that would write it (handleLease, put), which refuse it.
    if (!this.hashes.has(id) || this.isDamaged(id)) return { lease: EMPTY_LEASE }
    const [record, lease, result] = await Promise.all([this.store.getRecord(id), this.store.getLease(id), this.store.getResult(id)])
    if (this.isDamaged(id)) return { lease: EMPTY_LEASE }
    const state = { record, lease: lease ?? EMPTY_LEASE, result }
    // an unlocked read may finish after a locked write: caching it would bring old state back
    if (locked && record !== undefined) this.idx.remember(id, state)
    return state
  }

  /**
   * Whether part of the task's state here is unreadable on disk. Such a member takes no part in the
   * task again: the lease state it lost may hold a vote or a live grant, and acting on an empty one
   * could make a second certificate or a second holder. It reads as unknown, and the other members
   * decide the task without it.
   */
  isDamaged (id: string): boolean {
    return this.store.isDamaged?.(id) === true
  }

  /** Writes what changed (result, lease: a grant or a vote, record) as one atomic batch. */
  private async persist (before: ReplicaTaskState, after: ReplicaTaskState): Promise<void> {
    const id = (after.record ?? before.record)?.task.id
    if (id === undefined) return
    const change: ReplicaWrite = {}
    if (after.result !== undefined && after.result !== before.result) change.result = after.result
    if (after.lease !== before.lease) change.lease = after.lease
    if (after.record !== undefined && after.record !== before.record) {
      change.record = after.record
      if (before.record !== undefined) change.previous = before.record
    }
    if (change.result === undefined && change.lease === undefined && change.record === undefined) return
    const finalNow = after.record?.final !== undefined && before.record?.final === undefined
    // a certificate that holds no vote cast in this write is made of votes already on their signers'
    // disks: the outcome is settled whether or not this write lands, so readers and waiters need not
    // wait for this member's fsync (the holder's own commit is the last step of every task), and
    // the write needs none of its own: lost in a crash, the member is back to its vote, and recovery
    // or anti-entropy brings the certificate again (a majority's votes rebuild it). Not one that
    // brings the result: a later fsynced write of the record alone may outlive it after a power
    // loss (LevelDB does not sync a log it closes), and a final copy without its result is not repaired
    const settledElsewhere = finalNow && after.lease.vote === before.lease.vote
    const lazy = (settledElsewhere && change.result === undefined) || (finalNow && this.isCacheCopy(before, after, change))
    try {
      if (settledElsewhere) this.announceFinal(id, after)
      await this.store.write(id, change, lazy ? { lazy } : undefined)
    } catch (err) {
      // the copy is what the disk holds; the outcome told stands, certified by the votes it names
      if (settledElsewhere) this.forgetUnwritten(id, before)
      throw err
    }
    if (change.record !== undefined) this.idx.index(change.record, before.record)
    if (this.keepsResult(after.record)) this.wantResult(id, !resultMatches(after.record.final.cert.value, after.result))
    if (after.record !== undefined) this.idx.remember(id, after)
    if (finalNow && !settledElsewhere) this.announceFinal(id, after)
  }

  /**
   * Whether a write that makes a copy final is to a copy this node keeps outside the task's
   * placement (the submitter's, a holder's): no majority counts it, so the write needs no fsync of
   * its own. Lost in a power cut, the copy is unfinished again, and the sweeper reads it from the
   * placement (refreshCopies), as a read does (findTask answers from a copy only when it is settled). Not a copy's first write:
   * this node's listings, its index of a parent's subtasks and an idempotent retry read that one;
   * nor a change to a final copy (a dropped dead letter), nor a write with a lease (a seal).
   */
  private isCacheCopy (before: ReplicaTaskState, after: ReplicaTaskState, change: ReplicaWrite): boolean {
    return change.lease === undefined && before.record !== undefined && after.record !== undefined && !this.isMember(after.record)
  }

  private forgetUnwritten (id: string, before: ReplicaTaskState): void {
    if (before.record !== undefined) this.idx.remember(id, before)
    else this.idx.forgetState(id)
  }

  private announceFinal (id: string, after: ReplicaTaskState): void {
    this.idx.remember(id, after)
    this.init.onFinal?.(after.record as TaskRecord, after.result)
  }
}
