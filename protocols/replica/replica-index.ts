import { RecordHashes } from './digest.js'
import { ExpiryQueue, endedAt } from './expiries.js'
import { FinalTally } from './final-tally.js'
import { RecentCache } from './recent.js'
import type { ReplicaTaskState } from '../task/machine.js'
import { isDeadLetter } from '../task/record.js'
import type { TaskRecord } from '../task/record.js'

/**
 * What a replica keeps in memory about the records on its disk: the states it reads on every
 * request, and the indexes sweeps, anti-entropy, admission and metrics read instead of scanning
 * LevelDB. Rebuilt from the store at start (Replica.load); every write goes through `index`.
 */
export class ReplicaIndex {
  /** ids of records without a final state: what sweeps look at */
  readonly active = new Set<string>()
  /** the unfinished ones of them this member's placements hold (not copies kept as a non-member) */
  readonly activeMember = new Set<string>()
  /** a hash of each record's content, by id: anti-entropy compares these instead of records */
  readonly hashes = new RecordHashes()
  /** each record's current placement members, by id: who shares it with whom */
  readonly members = new Map<string, readonly string[]>()
  /** dead letters this node keeps outside their placement, with their generation: the sweeper reads them again now and then */
  readonly deadCopies = new Map<string, number>()
  /** finished tasks this node is a member of, by final state and capability */
  readonly finals = new FinalTally()
  /** finished records by when their retention started: what retention reads */
  readonly expiries = new ExpiryQueue()
  /** bumped on every change of which records are held, by whom, or with what content: what a digest is cached against */
  version = 0
  /** one array for each set of members: records read from disk each bring their own copy of the same few */
  private readonly placements = new SharedLists()
  /** parent task id -> ids of its subtasks kept here */
  private readonly children = new Map<string, Set<string>>()
  /**
   * The state of every unfinished task, written through on every change: what each request and
   * each claimable scan reads, without a LevelDB read. Finished tasks are read from disk (they are
   * read rarely, and there are many).
   */
  private readonly live = new Map<string, ReplicaTaskState>()
  /**
   * Tasks that just finished: the waiter, the executor and a late member all read a task right
   * after its commit, and each of those reads went to LevelDB.
   */
  private readonly finished: RecentCache<ReplicaTaskState>

  constructor (private readonly me: string, recentFinished: number, recentFinishedBytes: number) {
    this.finished = new RecentCache(recentFinished, recentFinishedBytes)
  }

  /** The state in memory: an unfinished task's, or a recently finished one's. */
  cached (id: string): ReplicaTaskState | undefined {
    return this.live.get(id) ?? this.finished.get(id)
  }

  /** An unfinished task's state, or undefined. */
  liveState (id: string): ReplicaTaskState | undefined {
    return this.live.get(id)
  }

  /** Keeps a state in memory: every unfinished task, and the recently finished ones. */
  remember (id: string, state: ReplicaTaskState): void {
    if (state.record?.final === undefined) {
      this.live.set(id, state)
      this.finished.delete(id)
    } else {
      this.live.delete(id)
      this.finished.set(id, state, 2_048 + (state.result?.size ?? 0))
    }
  }

  /** Drops the state in memory: what a failed write had put there before it reached the disk. */
  forgetState (id: string): void {
    this.live.delete(id)
    this.finished.delete(id)
  }

  childrenOf (parent: string): string[] {
    return [...this.children.get(parent) ?? []]
  }

  /** Indexes a record as written; `previous`: the copy it replaced, when there was one. */
  index (record: TaskRecord, previous?: TaskRecord): void {
    const id = record.task.id
    this.version++
    const parent = record.task.parent
    if (parent !== undefined) this.children.set(parent, (this.children.get(parent) ?? new Set()).add(id))
    const member = record.placement.members.includes(this.me)
    this.hashes.set(record, member)
    this.members.set(id, this.placements.shared(record.placement.members))
    if (record.final === undefined) this.active.add(id)
    else this.active.delete(id)
    if (record.final === undefined && member) this.activeMember.add(id)
    else this.activeMember.delete(id)
    if (!member && isDeadLetter(record)) this.deadCopies.set(id, record.generation)
    else this.deadCopies.delete(id)
    this.finals.set(id, record.final !== undefined && member ? { state: record.final.state, capability: record.task.capability } : undefined)
    // queued once per retention start, not on every rewrite of a finished copy (a peer's put, a repair)
    const ended = endedAt(record)
    if (ended !== undefined && (previous === undefined || endedAt(previous) !== ended)) this.expiries.push(id, ended)
  }

  /** Forgets a record deleted from disk (past retention). */
  drop (record: TaskRecord): void {
    const id = record.task.id
    this.version++
    this.forgetState(id)
    this.hashes.delete(id)
    const parent = record.task.parent
    if (parent !== undefined) {
      this.children.get(parent)?.delete(id)
      if (this.children.get(parent)?.size === 0) this.children.delete(parent)
    }
    this.members.delete(id)
    this.active.delete(id)
    this.activeMember.delete(id)
    this.deadCopies.delete(id)
    this.finals.delete(id)
  }
}

/**
 * Equal lists of strings, kept once: a record read from disk brings its own copy of its three
 * peer ids and their array (about 250 of the 640 bytes a record takes here), for what are a few
 * distinct placements. At most MAX_SHARED_LISTS are kept (about 2 MB); past that the map starts
 * afresh.
 */
class SharedLists {
  private readonly byKey = new Map<string, readonly string[]>()

  shared (list: readonly string[]): readonly string[] {
    const key = list.join('\n')
    const known = this.byKey.get(key)
    if (known !== undefined) return known
    // full: started afresh, so the placements of now are shared after churn (records keep theirs)
    if (this.byKey.size >= MAX_SHARED_LISTS) this.byKey.clear()
    this.byKey.set(key, list)
    return list
  }
}

const MAX_SHARED_LISTS = 10_000
