import { DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_CAP_MS } from '../lease/constants.js'
import { currentAttempts, failedAttempts, mergeRecords } from '../task/record.js'
import { KeyedMutex } from '../task/store.js'
import { retryDelay } from './backoff.js'
import { recordHash } from './digest.js'
import type { LeaseRequest, LeaseResponse } from '../lease/messages.js'
import type { Attempt, TaskRecord } from '../task/record.js'
import type { Task } from '../task/schema.js'
import type { LeaseState, ReplicaStore, StoredResult } from '../task/store.js'
import type { Logger } from '@libp2p/interface'

export interface ReplicaInit {
  /** @default 1_000 */
  backoffBaseMs?: number
  /** @default 60_000 */
  backoffCapMs?: number
  /** the replica's own clock: leases expire by it */
  now?: () => number
  /**
   * Completed and canceled tasks (and dead ones whose entry was dropped) are forgotten this long
   * after they ended; a copy arriving later is not stored again.
   * @default 604_800_000 (7 days)
   */
  retentionMs?: number
  log: Logger
}

export interface ReplicaStats {
  grants: number
  denials: number
  staleResults: number
  results: number
}

/**
 * One peer's part of every replica set it is in: the task records it keeps, and the leases it
 * grants by compare-and-set on its own persisted state. Each decision runs under a per-task lock
 * and is on disk before it is answered.
 */
export class Replica {
  readonly stats: ReplicaStats = { grants: 0, denials: 0, staleResults: 0, results: 0 }
  /** ids of records without a final state: what sweeps look at */
  readonly active = new Set<string>()
  /** a hash of each record's content, by id: anti-entropy compares these instead of records */
  readonly hashes = new Map<string, string>()
  private readonly store: ReplicaStore
  private readonly lock = new KeyedMutex()
  private readonly backoff: { baseMs: number, capMs: number }
  private readonly now: () => number
  private readonly retentionMs: number

  constructor (store: ReplicaStore, init: ReplicaInit) {
    this.store = store
    this.backoff = { baseMs: init.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS, capMs: init.backoffCapMs ?? DEFAULT_BACKOFF_CAP_MS }
    this.now = init.now ?? Date.now
    this.retentionMs = init.retentionMs ?? 7 * 24 * 3600_000
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
        this.hashes.delete(id)
        this.active.delete(id)
        n++
      })
    }
    return n
  }

  async load (): Promise<void> {
    for await (const record of this.store.records()) {
      if (record.final === undefined) this.active.add(record.task.id)
      this.hashes.set(record.task.id, recordHash(record))
    }
  }

  /** Merges a record in (a submit, a hand-off, a repair) and stores it durably. */
  async put (incoming: TaskRecord, result?: StoredResult): Promise<TaskRecord> {
    return this.lock.run(incoming.task.id, async () => {
      const existing = await this.store.getRecord(incoming.task.id)
      const merged = existing === undefined ? incoming : mergeRecords(existing, incoming)
      // a copy of a task already forgotten (or about to be) is not stored again
      if (this.isExpired(merged)) return merged
      if (result !== undefined) {
        const kept = await this.store.getResult(incoming.task.id)
        // a kept result of a claim that did not win is replaced by the winner's
        if (kept === undefined || (kept.claimId !== result.claimId && merged.final?.claimId === result.claimId)) await this.store.putResult(incoming.task.id, result)
      }
      await this.save(merged)
      return merged
    })
  }

  async get (id: string): Promise<{ record?: TaskRecord, result?: StoredResult }> {
    // record first: a result is written before the record that says completed, so a completed
    // record read here always comes with its result
    const record = await this.store.getRecord(id)
    const result = await this.store.getResult(id)
    // a kept result counts only once its claim is the committed one
    return { record, result: result !== undefined && record?.final?.claimId === result.claimId ? result : undefined }
  }

  /**
   * Tasks this replica would grant a lease on now, for the pull path; only those unchanged for
   * `minAgeMs`, so the pull path picks up what announcements missed instead of racing them.
   */
  async claimable (capabilities: Set<string>, limit: number, minAgeMs = 0): Promise<Task[]> {
    const now = this.now()
    const out: Task[] = []
    for (const id of this.active) {
      if (out.length >= limit) break
      const [record, lease] = await Promise.all([this.store.getRecord(id), this.store.getLease(id)])
      if (record === undefined || record.final !== undefined || !capabilities.has(record.task.capability)) continue
      if (isLive(lease, now) || (record.notBefore ?? 0) > now) continue
      if (Math.max(record.updatedAt, record.notBefore ?? 0) > now - minAgeMs) continue
      out.push(record.task)
    }
    return out
  }

  /** The record if this replica would grant a lease on it now. */
  async claimableRecord (id: string): Promise<TaskRecord | undefined> {
    const [record, lease] = await Promise.all([this.store.getRecord(id), this.store.getLease(id)])
    const now = this.now()
    if (record === undefined || record.final !== undefined || isLive(lease, now) || (record.notBefore ?? 0) > now) return undefined
    return record
  }

  /**
   * Expires every lapsed lease (a failed attempt, or dead after maxAttempts) and tasks past their
   * deadline. Returns the records that changed.
   */
  async sweep (): Promise<TaskRecord[]> {
    const changed: TaskRecord[] = []
    for (const id of [...this.active]) {
      await this.lock.run(id, async () => {
        const record = await this.store.getRecord(id)
        if (record === undefined) return
        const lease = await this.store.getLease(id)
        const before = JSON.stringify(record)
        const now = this.now()
        const after = this.expireLapsed(record, lease, now) ?? record
        if (after.final === undefined && now > after.task.deadline && !isLive(lease, now)) {
          const ran = currentAttempts(after).length > 0
          after.final = { state: 'dead', at: now, generation: after.generation, reason: ran ? 'deadline passed' : 'unclaimed' }
        }
        if (JSON.stringify(after) !== before) {
          await this.persistLeaseAfterExpiry(id, lease, now)
          await this.save(after)
          changed.push(after)
        }
      })
    }
    return changed
  }

  async handleLease (from: string, req: LeaseRequest): Promise<LeaseResponse> {
    return this.lock.run(req.id, async () => {
      const record = await this.store.getRecord(req.id)
      if (record === undefined) return { status: 'UNKNOWN_TASK' }
      const now = this.now()
      const stored = await this.store.getLease(req.id)
      const expired = this.expireLapsed(record, stored, now)
      if (expired !== undefined) {
        await this.persistLeaseAfterExpiry(req.id, stored, now)
        await this.save(expired)
      }
      const rec = expired ?? record
      const lease = isLive(stored, now) ? stored : undefined
      switch (req.op) {
        case 'acquire': return this.acquire(rec, lease, stored, from, req.claimId, req.durationMs, now)
        case 'renew': {
          if (rec.final?.state === 'canceled') return { status: 'CANCELED' }
          if (lease?.claimId !== req.claimId || lease.term !== req.term || lease.holder !== from) return this.deny({ status: 'DENIED', holder: lease?.holder, reason: 'not the holder' })
          const renewed: LeaseState = { ...lease, expiresAt: now + req.durationMs }
          await this.store.putLease(req.id, renewed)
          return { status: 'OK', term: renewed.term, expiresAt: renewed.expiresAt }
        }
        case 'release': {
          if (stored?.claimId !== req.claimId || stored.term !== req.term || stored.holder !== from) return this.deny({ status: 'DENIED', reason: 'not the holder' })
          await this.store.putLease(req.id, { term: stored.term, maxTerm: stored.maxTerm })
          await this.save(setAttempt(rec, req.claimId, req.ran ? { outcome: 'failed', endedAt: now, error: 'released by holder' } : { outcome: 'released', endedAt: now }))
          return { status: 'OK' }
        }
        case 'complete': return this.complete(rec, lease, from, req.claimId, req.term, req.result, req.size, req.durationMs, now)
        case 'commit': return this.commit(rec, lease, from, req.claimId, req.term, now)
        case 'fail': {
          if (rec.final !== undefined) return { status: 'FINISHED', state: rec.final.state }
          if (stored?.claimId !== req.claimId || stored.term !== req.term || stored.holder !== from) return this.stale()
          await this.store.putLease(req.id, { term: stored.term, maxTerm: stored.maxTerm })
          const failed = this.afterFailure(setAttempt(rec, req.claimId, { outcome: 'failed', endedAt: now, error: req.error }), now, req.unrecoverable ? req.error : undefined)
          await this.save(failed)
          return { status: 'OK', dead: failed.final?.state === 'dead', notBefore: failed.notBefore }
        }
        case 'cancel': {
          if (rec.final !== undefined) return { status: 'FINISHED', state: rec.final.state }
          await this.save({ ...rec, final: { state: 'canceled', at: now, generation: rec.generation, reason: 'canceled' }, updatedAt: now })
          return { status: 'OK', holder: lease?.holder }
        }
        case 'redrive': {
          if (rec.final?.state !== 'dead') return { status: 'DENIED', reason: `task is ${rec.final?.state ?? 'not dead'}` }
          const { final: _f, notBefore: _n, ...rest } = rec
          await this.save({ ...rest, generation: rec.generation + 1, updatedAt: now })
          return { status: 'OK' }
        }
        case 'drop': {
          if (rec.final?.state !== 'dead') return { status: 'DENIED', reason: `task is ${rec.final?.state ?? 'not dead'}` }
          await this.save({ ...rec, droppedGeneration: rec.generation, updatedAt: now })
          return { status: 'OK' }
        }
      }
    })
  }

  private async acquire (rec: TaskRecord, lease: LeaseState | undefined, stored: LeaseState | undefined, from: string, claimId: string, durationMs: number, now: number): Promise<LeaseResponse> {
    if (rec.final !== undefined) return { status: 'FINISHED', state: rec.final.state }
    if (lease !== undefined) {
      if (lease.claimId === claimId && lease.holder === from) return { status: 'OK', term: lease.term, expiresAt: lease.expiresAt }
      return this.deny({ status: 'DENIED', holder: lease.holder, expiresAt: lease.expiresAt })
    }
    if ((rec.notBefore ?? 0) > now) return this.deny({ status: 'RETRY_LATER', notBefore: rec.notBefore })
    const term = (stored?.maxTerm ?? 0) + 1
    const granted: LeaseState = { claimId, holder: from, term, expiresAt: now + durationMs, maxTerm: term }
    // the term is on disk before anyone hears of it: a restarted replica never grants it again
    await this.store.putLease(rec.task.id, granted)
    const attempt: Attempt = { claimId, generation: rec.generation, peer: from, startedAt: now, outcome: 'running' }
    await this.save({ ...rec, attempts: [...rec.attempts, attempt], updatedAt: now })
    this.stats.grants++
    return { status: 'OK', term, expiresAt: granted.expiresAt, attempt: failedAttempts(rec) + 1 }
  }

  private async complete (rec: TaskRecord, lease: LeaseState | undefined, from: string, claimId: string, term: number, value: unknown, size: number, durationMs: number, now: number): Promise<LeaseResponse> {
    if (rec.final?.state === 'completed' && rec.final.claimId === claimId) return { status: 'OK' }
    if (rec.final !== undefined) {
      // a late result from a superseded holder: refused like any stale term
      this.stats.staleResults++
      return { status: 'FINISHED', state: rec.final.state }
    }
    // only under a lease that is live by this replica's clock: after expiry a newer holder may exist
    if (lease?.claimId !== claimId || lease.term !== term || lease.holder !== from) return this.stale()
    await this.store.putResult(rec.task.id, { claimId, peer: from, value: value as StoredResult['value'], size, at: now })
    // held on for the commit, so nobody is granted the task between the two phases
    await this.store.putLease(rec.task.id, { ...lease, expiresAt: Math.max(lease.expiresAt ?? now, now + durationMs) })
    return { status: 'OK' }
  }

  private async commit (rec: TaskRecord, lease: LeaseState | undefined, from: string, claimId: string, term: number, now: number): Promise<LeaseResponse> {
    if (rec.final?.state === 'completed' && rec.final.claimId === claimId) return { status: 'OK' }
    if (rec.final !== undefined) return { status: 'FINISHED', state: rec.final.state }
    const kept = await this.store.getResult(rec.task.id)
    if (lease?.claimId !== claimId || lease.term !== term || lease.holder !== from || kept?.claimId !== claimId) return this.stale()
    await this.store.putLease(rec.task.id, { term: lease.term, maxTerm: lease.maxTerm })
    const done = setAttempt(rec, claimId, { outcome: 'completed', endedAt: now })
    await this.save({ ...done, final: { state: 'completed', at: now, generation: rec.generation, peer: from, claimId, resultSize: kept.size } })
    this.stats.results++
    return { status: 'OK' }
  }

  /** The record with a lapsed lease's attempt marked expired, or undefined if nothing lapsed. */
  private expireLapsed (record: TaskRecord, lease: LeaseState | undefined, now: number): TaskRecord | undefined {
    if (lease?.claimId === undefined || isLive(lease, now) || record.final !== undefined) return undefined
    const attempt = record.attempts.find(a => a.claimId === lease.claimId)
    if (attempt === undefined || attempt.outcome !== 'running') return undefined
    return this.afterFailure(setAttempt(record, lease.claimId, { outcome: 'expired', endedAt: now, error: 'lease expired' }), now)
  }

  private async persistLeaseAfterExpiry (id: string, lease: LeaseState | undefined, now: number): Promise<void> {
    if (lease?.claimId !== undefined && !isLive(lease, now)) await this.store.putLease(id, { term: lease.term, maxTerm: lease.maxTerm })
  }

  /** After a failed attempt: dead when the budget is spent (or the error is unrecoverable), else a backoff. */
  private afterFailure (record: TaskRecord, now: number, unrecoverable?: string): TaskRecord {
    const failures = failedAttempts(record)
    if (unrecoverable !== undefined || failures >= record.task.maxAttempts) {
      const reason = unrecoverable ?? `failed ${failures} of ${record.task.maxAttempts} attempts`
      return { ...record, final: { state: 'dead', at: now, generation: record.generation, reason }, updatedAt: now }
    }
    return { ...record, notBefore: now + retryDelay(record.task.id, failures, this.backoff), updatedAt: now }
  }

  private async save (record: TaskRecord): Promise<void> {
    await this.store.putRecord(record)
    this.hashes.set(record.task.id, recordHash(record))
    if (record.final === undefined) this.active.add(record.task.id)
    else this.active.delete(record.task.id)
  }

  private deny (res: LeaseResponse): LeaseResponse {
    this.stats.denials++
    return res
  }

  private stale (): LeaseResponse {
    this.stats.staleResults++
    return { status: 'STALE_TERM' }
  }
}

function isLive (lease: LeaseState | undefined, now: number): lease is LeaseState & { claimId: string, holder: string, expiresAt: number } {
  return lease?.claimId !== undefined && lease.expiresAt !== undefined && lease.expiresAt > now
}

function setAttempt (record: TaskRecord, claimId: string, patch: Partial<Attempt>): TaskRecord {
  return { ...record, attempts: record.attempts.map(a => a.claimId === claimId ? { ...a, ...patch } : a), updatedAt: patch.endedAt ?? record.updatedAt }
}
