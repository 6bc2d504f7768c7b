import { DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_CAP_MS } from '../lease/constants.js'
import { certify, sameValue, signedHere, statementBytes, verifyVote } from '../task/certificate.js'
import { EMPTY_LEASE, clearHolder, currentVote, expireLapsed, isLive, transition } from '../task/machine.js'
import { failedAttempts, hasValidFinal, isWaiting, mergeRecords, mustDecideOf, resultMatches, samePlacement, stateOf } from '../task/record.js'
import { hasValidId } from '../task/schema.js'
import { KeyedMutex } from '../task/store.js'
import { RecordHashes } from './digest.js'
import { FinalTally } from './final-tally.js'
import { RecentCache } from './recent.js'
import type { LeaseRequest, LeaseResponse, ShownVote } from '../lease/messages.js'
import type { MachineEnv, ReplicaTaskState, Transition } from '../task/machine.js'
import type { TallyRow } from './final-tally.js'
import type { Placement, TaskRecord, TaskState } from '../task/record.js'
import type { Task } from '../task/schema.js'
import type { ReplicaStore, ReplicaWrite, StoredResult } from '../task/store.js'
import type { Logger } from '@libp2p/interface'

export interface ReplicaInit {
  /** this peer's id: membership of a placement is checked against it */
  me: string
  /** signs a vote with the node key */
  sign: (bytes: Uint8Array) => Promise<Uint8Array> | Uint8Array
  /** @default 1_000 */
  backoffBaseMs?: number
  /** @default 60_000 */
  backoffCapMs?: number
  /** the replica's own clock: leases and deadlines are judged by it */
  now?: () => number
  /**
   * Completed and canceled tasks (and dead ones whose entry was dropped) are forgotten this long
   * after they ended; a copy arriving later is not stored again.
   * @default 604_800_000 (7 days)
   */
  retentionMs?: number
  /** finished tasks whose state is kept in memory after their commit, most recent first. @default 4_096 */
  recentFinished?: number
  /** the bytes of results those may hold. @default 33_554_432 (32 MiB) */
  recentFinishedBytes?: number
  /**
   * a task's final state was stored here: who waits on it can be told. After it is on disk, or
   * before when its certificate holds no vote cast in that write (its votes are on their signers'
   * disks); again if that write failed and a later one stores it
   */
  onFinal?: (record: TaskRecord, result: StoredResult | undefined) => void
  log: Logger
}

export interface ReplicaStats {
  grants: number
  denials: number
  staleResults: number
  results: number
  votes: number
  /** records or finals refused: a forged id, or a final state without a valid certificate */
  refusedRecords: number
}

/** A task this member should help decide: out of attempts, past its deadline, or voted but not final. */
export interface Undecided {
  record: TaskRecord
  voted: boolean
}

/**
 * One peer's part of every placement it is a member of. Every change to a task's state goes
 * through `transition` (protocols/task/machine.ts) under a per-task lock, and is on disk before it
 * is answered. Records from peers merge in only with a valid id, and final states only with a
 * valid certificate.
 */
export class Replica {
  readonly stats: ReplicaStats = { grants: 0, denials: 0, staleResults: 0, results: 0, votes: 0, refusedRecords: 0 }
  /** ids of records without a final state: what sweeps look at */
  readonly active = new Set<string>()
  /** the unfinished ones of them this member's placements hold (not copies kept as a non-member) */
  private readonly activeMember = new Set<string>()

  /** Unfinished tasks of this member's placements: what its submits are admitted against. */
  get activeHere (): number {
    return this.activeMember.size
  }
  /** a hash of each record's content, by id: anti-entropy compares these instead of records */
  readonly hashes = new RecordHashes()
  /** each record's current placement members, by id: who shares it with whom */
  readonly members = new Map<string, string[]>()
  /** finished tasks this node is a member of, by final state and capability */
  private readonly finals = new FinalTally()
  /** parent task id -> ids of its subtasks kept here */
  private readonly children = new Map<string, Set<string>>()
  readonly me: string
  private readonly store: ReplicaStore
  private readonly lock = new KeyedMutex()
  /**
   * The state of every unfinished task this replica holds, written through on every change: what
   * each request and each claimable scan reads, without a LevelDB read. Finished tasks are read from
   * disk (they are read rarely, and there are many).
   */
  private readonly live = new Map<string, ReplicaTaskState>()
  /**
   * Tasks that just finished: the waiter, the executor and a late member all read a task right
   * after its commit, and each of those reads went to LevelDB.
   */
  private readonly finished: RecentCache<ReplicaTaskState>
  private readonly init: ReplicaInit
  private readonly backoff: { baseMs: number, capMs: number }
  private readonly now: () => number
  private readonly retentionMs: number

  constructor (store: ReplicaStore, init: ReplicaInit) {
    this.store = store
    this.init = init
    this.me = init.me
    this.backoff = { baseMs: init.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS, capMs: init.backoffCapMs ?? DEFAULT_BACKOFF_CAP_MS }
    this.now = init.now ?? Date.now
    this.retentionMs = init.retentionMs ?? 7 * 24 * 3600_000
    this.finished = new RecentCache(init.recentFinished ?? 4_096, init.recentFinishedBytes ?? 32 * 1024 * 1024)
  }

  /** Past retention: a completed or canceled task, or a dead one whose entry was dropped. */
  isExpired (record: TaskRecord, now = this.now()): boolean {
    const f = record.final
    if (f === undefined) return false
    const ended = f.state === 'dead' ? ((record.droppedGeneration ?? -1) >= record.generation ? record.updatedAt : undefined) : f.at
    return ended !== undefined && ended + this.retentionMs < now
  }

  /** Deletes every record past retention; returns how many. */
  async expireRetained (): Promise<number> {
    let n = 0
    for (const id of [...this.hashes.keys()]) {
      await this.lock.run(id, async () => {
        const record = await this.store.getRecord(id)
        if (record === undefined || !this.isExpired(record)) return
        await this.store.deleteTask(id)
        this.live.delete(id)
        this.finished.delete(id)
        this.hashes.delete(id)
        const parent = record.task.parent
        if (parent !== undefined) {
          this.children.get(parent)?.delete(id)
          if (this.children.get(parent)?.size === 0) this.children.delete(parent)
        }
        this.members.delete(id)
        this.active.delete(id)
        this.activeMember.delete(id)
        this.finals.delete(id)
        n++
      })
    }
    return n
  }

  async load (): Promise<void> {
    for await (const record of this.store.records()) this.index(record)
  }

  /** Subtasks of a task this node keeps a record of: a trace asks for them, and a scan of the store per ask was any peer's to trigger. */
  childrenOf (parent: string): string[] {
    return [...this.children.get(parent) ?? []]
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
      const record = (this.cached(id) ?? await this.load1(id, false)).record
      if (record === undefined || record.final !== undefined || !this.isMember(record)) continue
      unfinished.push({ state: stateOf(record, this.now()), capability: record.task.capability })
    }
    return this.finals.entries(unfinished)
  }

  isMember (record: TaskRecord): boolean {
    return record.placement.members.includes(this.me)
  }

  /**
   * Merges a record in (a submit, a repair, a copy a read brought) and stores it durably. A forged
   * id is refused; a final state without a valid certificate is dropped from the copy first.
   */
  async put (incoming: TaskRecord, result?: StoredResult): Promise<TaskRecord | undefined> {
    if (!hasValidId(incoming.task)) {
      this.stats.refusedRecords++
      return undefined
    }
    let record = incoming
    if (record.final !== undefined && !hasValidFinal(record)) {
      this.stats.refusedRecords++
      const { final: _f, ...rest } = record
      record = rest
    }
    return this.lock.run(record.task.id, async () => {
      const before = await this.load1(record.task.id)
      const existing = before.record
      // a member's placement changes only by an install: a copy naming another placement (stale,
      // or forged) neither moves it nor brings in a final certified by other peers. A copy of the
      // same placement may bind it to the value its move found (mergeRecords keeps the bound one)
      const pin = (r: TaskRecord): TaskRecord => existing !== undefined && this.isMember(existing) ? { ...r, placement: samePlacement(existing.placement, r.placement) ? r.placement : existing.placement, ...(existing.previous === undefined ? {} : { previous: existing.previous }) } : r
      const pinned = pin(record)
      const merged0 = existing === undefined ? pinned : mergeRecords(existing, pinned)
      let merged = pin(merged0)
      if (merged.final !== undefined && !hasValidFinal(merged)) {
        this.stats.refusedRecords++
        if (existing === undefined) return undefined
        merged = existing
      }
      // a copy of a task already forgotten (or about to be) is not stored again
      if (this.isExpired(merged)) return merged
      let keptResult = before.result
      if (result !== undefined && (merged.final === undefined || resultMatches(merged.final?.cert.value, result))) {
        const kept = before.result
        // only the result the certificate names (by claim and by hash) replaces a kept one
        if (kept === undefined || (!resultMatches(merged.final?.cert.value, kept) && resultMatches(merged.final?.cert.value, result))) keptResult = result
      }
      if (merged === existing && keptResult === before.result) return merged
      await this.persist(before, { ...before, record: merged, result: keptResult })
      return merged
    })
  }

  /** This replica's copy: the record and, once final, the certified result (or a kept one, flagged). */
  async get (id: string): Promise<{ record?: TaskRecord, result?: StoredResult }> {
    const cached = this.cached(id)
    // every stored record is indexed: an unknown id has nothing on disk to read
    if (cached === undefined && !this.hashes.has(id)) return {}
    // record first: a result is written before the record that says completed
    const record = cached !== undefined ? cached.record : await this.store.getRecord(id)
    const result = cached !== undefined ? cached.result : await this.store.getResult(id)
    // a kept result counts only if it is the one the certificate names, by claim and by hash
    return { record, result: result !== undefined && record !== undefined && resultMatches(record.final?.cert.value, result) ? result : undefined }
  }

  /**
   * False for an unfinished task whose record changed after `cutoff` and not after `now` (its
   * members are still converging); a change dated in the future by a skewed clock counts as settled.
   */
  settled (id: string, cutoff: number, now = this.now()): boolean {
    const state = this.live.get(id)
    return state?.record === undefined || state.record.updatedAt <= cutoff || state.record.updatedAt > now
  }

  /** Tasks of which this member holds a placement share and would grant a lease now: the pull path. */
  async claimable (capabilities: Set<string>, limit: number, minAgeMs = 0): Promise<Array<{ task: Task, placement: Placement }>> {
    const now = this.now()
    const out: Array<{ task: Task, placement: Placement }> = []
    for (const id of this.active) {
      if (out.length >= limit) break
      const record = await this.claimableRecord(id, now)
      if (record === undefined || !capabilities.has(record.task.capability)) continue
      if (Math.max(record.updatedAt, record.notBefore ?? 0) > now - minAgeMs) continue
      out.push({ task: record.task, placement: record.placement })
    }
    return out
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
   */
  async adoptMove (id: string, placement: Placement): Promise<boolean> {
    return this.lock.run(id, async () => {
      const s = await this.load1(id)
      const r = s.record
      if (r === undefined || r.final !== undefined || placement.epoch <= r.placement.epoch || (s.lease.sealedEpoch ?? -1) < r.placement.epoch) return false
      const record = { ...r, placement, previous: [...(r.previous ?? []), r.placement].slice(-16), updatedAt: this.now() }
      const { vote: _v, ...lease } = clearHolder(s.lease)
      await this.persist(s, { ...s, record, lease })
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
    for (const id of [...this.active]) {
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
    if (req.op === 'acquire' && req.record !== undefined && !this.isNewRecord(req.record, req.id, req.epoch)) {
      this.stats.refusedRecords++
      return { status: 'ERROR', reason: 'the record with a claim is not a new task of this placement' }
    }
    return this.lock.run(req.id, async () => {
      const loaded = await this.load1(req.id)
      // a submit that claims the task at once brings its record: stored with the grant, one write
      const s = req.op === 'acquire' && req.record !== undefined && loaded.record === undefined ? { ...loaded, record: req.record } : loaded
      // the holder shows its own vote (when it is a member), and a commit carries it: from its signer,
      // taken for this request unchecked; the votes it relays from others are checked
      const fromSigner = req.op === 'vote' || req.op === 'commit' ? new Set((req.op === 'vote' ? req.shown ?? [] : req.cert.votes).filter(v => v.peer === from).map(v => v.sig)) : undefined
      const trustedVote = fromSigner === undefined || fromSigner.size === 0 ? undefined : (peer: string, sig: string) => peer === from && fromSigner.has(sig)
      const env: MachineEnv = { now: this.now(), me: this.me, from, backoff: this.backoff, verifyVote: verifyShownVote, ...(trustedVote === undefined ? {} : { trustedVote }) }
      const t = transition(s, req, env)
      if (t.sign !== undefined && t.state.lease.vote !== undefined) {
        const statement = statementBytes(t.sign)
        const sig = Buffer.from(await this.init.sign(statement)).toString('base64')
        signedHere(this.me, statement, sig)
        t.state.lease.vote = { ...t.state.lease.vote, sig }
        if (t.reply.vote !== undefined) t.reply.vote = { ...t.reply.vote, sig }
        this.stats.votes++
      }
      const done = req.op === 'vote' && req.shown !== undefined ? this.commitShown(t, req.shown, env) : t
      await this.persist(loaded, done.state)
      this.count(req, done.reply)
      return done.reply
    })
  }

  /** A task as its submitter made it, for this member: valid id, this placement, nothing happened yet. */
  private isNewRecord (record: TaskRecord, id: string, epoch: number): boolean {
    return record.task.id === id && hasValidId(record.task) && this.isMember(record) && record.placement.epoch === epoch &&
      record.generation === 0 && record.attempts.length === 0 && record.final === undefined && record.previous === undefined
  }

  /**
   * The commit folded into a vote: when this member's fresh vote and the votes shown with the request
   * make a certificate, the commit transition runs on the voted state and both go to disk in one
   * write. A shown vote that is not valid leaves the vote alone, uncommitted.
   */
  private commitShown (t: Transition, shown: ShownVote[], env: MachineEnv): Transition {
    const own = t.reply.vote
    const r = t.state.record
    if (t.reply.status !== 'OK' || own === undefined || r === undefined) return t
    const others = shown.filter(v => v.peer !== this.me && v.generation === own.generation && v.epoch === own.epoch && sameValue(v.value, own.value))
    const cert = certify(r.task.id, own.generation, own.epoch, own.value, [own, ...others].map(v => ({ peer: v.peer, term: v.term, sig: v.sig })), r.placement.members)
    if (cert === undefined) return t
    const c = transition(t.state, { op: 'commit', id: r.task.id, epoch: own.epoch, cert }, env)
    if (c.reply.status !== 'OK') return t
    return { state: c.state, reply: { ...t.reply, committed: true } }
  }

  private count (req: LeaseRequest, reply: LeaseResponse): void {
    if (req.op === 'acquire') {
      if (reply.status === 'OK') this.stats.grants++
      else this.stats.denials++
    }
    if (reply.status === 'STALE_TERM' || (req.op === 'vote' && (reply.status === 'VOTED' || reply.status === 'FINISHED') && reply.vote?.value.claimId !== req.claimId)) this.stats.staleResults++
    if ((req.op === 'commit' && reply.status === 'OK') || reply.committed === true) this.stats.results++
  }

  /** A task's state; `locked` callers (under the task's lock) may fill the cache, others only read it. */
  private async load1 (id: string, locked = true): Promise<ReplicaTaskState> {
    const cached = this.cached(id)
    if (cached !== undefined) return cached
    // every stored record is indexed (load, index), and a lease is written only with its record:
    // a task not in the index has nothing on disk
    if (!this.hashes.has(id)) return { lease: EMPTY_LEASE }
    const [record, lease, result] = await Promise.all([this.store.getRecord(id), this.store.getLease(id), this.store.getResult(id)])
    const state = { record, lease: lease ?? EMPTY_LEASE, result }
    // an unlocked read may finish after a locked write: caching it would bring old state back
    if (locked && record !== undefined) this.remember(id, state)
    return state
  }

  /** Writes what changed (result, lease: a grant or a vote, record) as one atomic batch. */
  private async persist (before: ReplicaTaskState, after: ReplicaTaskState): Promise<void> {
    const id = (after.record ?? before.record)?.task.id
    if (id === undefined) return
    const change: ReplicaWrite = {}
    if (after.result !== undefined && after.result !== before.result) change.result = after.result
    if (after.lease !== before.lease) change.lease = after.lease
    if (after.record !== undefined && after.record !== before.record) change.record = after.record
    if (change.result === undefined && change.lease === undefined && change.record === undefined) return
    const finalNow = after.record?.final !== undefined && before.record?.final === undefined
    // a certificate that holds no vote cast in this write is made of votes already on their signers'
    // disks: the outcome is settled whether or not this write lands, so readers and waiters need not
    // wait for this member's fsync (the holder's own commit is the last step of every task)
    const settledElsewhere = finalNow && after.lease.vote === before.lease.vote
    try {
      if (settledElsewhere) this.announceFinal(id, after)
      await this.store.write(id, change)
    } catch (err) {
      // the copy is what the disk holds; the outcome told stands, certified by the votes it names
      if (settledElsewhere) this.forgetUnwritten(id, before)
      throw err
    }
    if (change.record !== undefined) this.index(change.record)
    if (after.record !== undefined) this.remember(id, after)
    if (finalNow && !settledElsewhere) this.announceFinal(id, after)
  }

  private forgetUnwritten (id: string, before: ReplicaTaskState): void {
    if (before.record !== undefined) {
      this.remember(id, before)
    } else {
      this.live.delete(id)
      this.finished.delete(id)
    }
  }

  private announceFinal (id: string, after: ReplicaTaskState): void {
    this.remember(id, after)
    this.init.onFinal?.(after.record as TaskRecord, after.result)
  }

  private cached (id: string): ReplicaTaskState | undefined {
    return this.live.get(id) ?? this.finished.get(id)
  }

  /** Keeps a state in memory: every unfinished task, and the recently finished ones. */
  private remember (id: string, state: ReplicaTaskState): void {
    if (state.record?.final === undefined) {
      this.live.set(id, state)
      this.finished.delete(id)
    } else {
      this.live.delete(id)
      this.finished.set(id, state, 2_048 + (state.result?.size ?? 0))
    }
  }

  private index (record: TaskRecord): void {
    const parent = record.task.parent
    if (parent !== undefined) this.children.set(parent, (this.children.get(parent) ?? new Set()).add(record.task.id))
    this.hashes.set(record)
    this.members.set(record.task.id, record.placement.members)
    if (record.final === undefined) this.active.add(record.task.id)
    else this.active.delete(record.task.id)
    if (record.final === undefined && this.isMember(record)) this.activeMember.add(record.task.id)
    else this.activeMember.delete(record.task.id)
    this.finals.set(record.task.id, record.final !== undefined && this.isMember(record) ? { state: record.final.state, capability: record.task.capability } : undefined)
  }
}

function verifyShownVote (id: string, v: ShownVote): boolean {
  return verifyVote(id, v.generation, v.epoch, v, v.value)
}
