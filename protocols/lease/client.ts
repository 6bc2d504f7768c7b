import { randomBytes } from 'node:crypto'
import { DEFAULT_LEASE_MS, DEFAULT_RENEW_FRACTION } from './constants.js'
import { LeaseDeniedError, LeaseLostError, QuorumUnavailableError, StaleTermError, TaskFinishedError } from './errors.js'
import type { LeaseRequest, LeaseResponse } from './messages.js'
import type { Logger, PeerId } from '@libp2p/interface'

/** Sends a lease request to one replica (the local replica directly, others over the wire). */
export type LeaseCaller = (peer: PeerId, req: LeaseRequest) => Promise<LeaseResponse>

export interface LeaseClientInit {
  call: LeaseCaller
  /** pushes the task record to a replica that does not know it yet */
  pushRecord: (peer: PeerId, taskId: string) => Promise<void>
  /** @default 10_000 */
  leaseMs?: number
  /** @default 1/3 */
  renewFraction?: number
  log: Logger
}

export interface LeaseClientStats {
  acquired: number
  denied: number
  lost: number
}

export const majority = (n: number): number => Math.floor(n / 2) + 1

/** Claims tasks: a lease holds only with grants from a majority of the task's replica set. */
export class LeaseClient {
  readonly stats: LeaseClientStats = { acquired: 0, denied: 0, lost: 0 }
  private readonly init: LeaseClientInit

  constructor (init: LeaseClientInit) {
    this.init = init
  }

  get leaseMs (): number {
    return this.init.leaseMs ?? DEFAULT_LEASE_MS
  }

  /** Resolves with a held lease, or throws LeaseDeniedError, TaskFinishedError or QuorumUnavailableError. */
  async acquire (taskId: string, replicas: PeerId[]): Promise<HeldLease> {
    const claimId = randomBytes(8).toString('hex')
    const sentAt = Date.now()
    const answers = await Promise.all(replicas.map(async peer => {
      const req: LeaseRequest = { op: 'acquire', id: taskId, claimId, durationMs: this.leaseMs }
      let res = await this.safeCall(peer, req)
      if (res.status === 'UNKNOWN_TASK') {
        await this.init.pushRecord(peer, taskId).catch(() => {})
        res = await this.safeCall(peer, req)
      }
      return { peer, res }
    }))
    const grants = answers.filter(a => a.res.status === 'OK' && a.res.term !== undefined)
    if (grants.length >= majority(replicas.length)) {
      this.stats.acquired++
      // the grantors' histories differ (one may have missed an earlier grant): the longest counts
      const attempt = Math.max(1, ...grants.map(g => g.res.attempt ?? 1))
      return new HeldLease(this, taskId, claimId, replicas, new Map(grants.map(g => [g.peer.toString(), { peer: g.peer, term: g.res.term as number }])), sentAt + this.leaseMs, attempt)
    }
    // a claim that falls short gives back what it got, so it blocks nobody until expiry
    await Promise.all(grants.map(async g => this.safeCall(g.peer, { op: 'release', id: taskId, claimId, term: g.res.term as number, ran: false })))
    this.stats.denied++
    const finished = answers.find(a => a.res.status === 'FINISHED')
    if (finished !== undefined) throw new TaskFinishedError(finished.res.state ?? 'finished')
    const denied = answers.find(a => a.res.status === 'DENIED' || a.res.status === 'RETRY_LATER')
    if (denied !== undefined) throw new LeaseDeniedError(denied.res.status === 'RETRY_LATER' ? 'retry backoff' : 'lease held by another peer', denied.res.holder)
    throw new QuorumUnavailableError(`${grants.length} of ${replicas.length} replicas granted; ${majority(replicas.length)} needed`)
  }

  /** Sends `req` to every replica; resolves with the answers once a majority said OK, else throws. */
  async toMajority (replicas: PeerId[], req: LeaseRequest): Promise<LeaseResponse[]> {
    const answers = await Promise.all(replicas.map(async peer => this.safeCall(peer, req)))
    const ok = answers.filter(a => a.status === 'OK')
    if (ok.length >= majority(replicas.length)) return answers
    const finished = answers.find(a => a.status === 'FINISHED')
    if (finished !== undefined) throw new TaskFinishedError(finished.state ?? 'finished')
    const denied = answers.find(a => a.status === 'DENIED')
    if (denied !== undefined) throw new LeaseDeniedError(denied.reason ?? 'denied', denied.holder)
    throw new QuorumUnavailableError(`${ok.length} of ${replicas.length} replicas answered OK`)
  }

  async safeCall (peer: PeerId, req: LeaseRequest): Promise<LeaseResponse> {
    try {
      return await this.init.call(peer, req)
    } catch (err: any) {
      this.init.log('lease %s to %p failed: %s', req.op, peer, err.message)
      return { status: 'ERROR', reason: err.message }
    }
  }

  renewFraction (): number {
    return this.init.renewFraction ?? DEFAULT_RENEW_FRACTION
  }
}

/**
 * A lease this peer holds. It renews itself at a fixed fraction of the lease; when it cannot renew
 * with a majority before the lease would lapse (by this peer's clock, counted from when each
 * request was sent), or a replica says the task was canceled, `signal` aborts.
 */
export class HeldLease {
  readonly taskId: string
  readonly claimId: string
  readonly replicas: PeerId[]
  readonly grants: Map<string, { peer: PeerId, term: number }>
  /** which attempt of the task this lease is for (1 for the first), as the grantors count */
  readonly attempt: number
  private readonly client: LeaseClient
  private readonly controller = new AbortController()
  private expiresAt: number
  private renewTimer?: ReturnType<typeof setTimeout>
  private expiryTimer?: ReturnType<typeof setTimeout>
  private done = false

  constructor (client: LeaseClient, taskId: string, claimId: string, replicas: PeerId[], grants: Map<string, { peer: PeerId, term: number }>, expiresAt: number, attempt: number) {
    this.client = client
    this.attempt = attempt
    this.taskId = taskId
    this.claimId = claimId
    this.replicas = replicas
    this.grants = grants
    this.expiresAt = expiresAt
    this.armExpiry()
    this.scheduleRenew()
  }

  get signal (): AbortSignal {
    return this.controller.signal
  }

  /**
   * Completes in two phases: the replicas that granted keep the result (and hold the lease a little
   * longer); once a majority kept it, they are told to commit. Resolves once a majority committed.
   * A result kept by a minority never becomes final: that is what makes a late result harmless.
   */
  async complete (result: unknown, size: number): Promise<void> {
    this.stopTimers()
    const grants = [...this.grants.values()]
    const need = majority(this.replicas.length)
    const kept = await Promise.all(grants.map(async g => ({ g, res: await this.client.safeCall(g.peer, { op: 'complete', id: this.taskId, claimId: this.claimId, term: g.term, result: result as never, size, durationMs: this.client.leaseMs }) })))
    const ok = kept.filter(k => k.res.status === 'OK')
    if (ok.length < need) {
      this.done = true
      if (kept.some(k => k.res.status === 'STALE_TERM' || k.res.status === 'FINISHED')) throw new StaleTermError(`result refused: ${ok.length} of ${this.replicas.length} replicas kept it`)
      throw new QuorumUnavailableError(`result kept by ${ok.length} of ${this.replicas.length} replicas`)
    }
    const committed = await Promise.all(ok.map(async k => this.client.safeCall(k.g.peer, { op: 'commit', id: this.taskId, claimId: this.claimId, term: k.g.term })))
    this.done = true
    const n = committed.filter(c => c.status === 'OK').length
    if (n < need) throw new StaleTermError(`result committed on ${n} of ${this.replicas.length} replicas`)
  }

  /** Reports a failed attempt; resolves with whether the task is now dead. */
  async fail (error: string, unrecoverable: boolean): Promise<{ dead: boolean }> {
    this.stopTimers()
    const answers = await Promise.all([...this.grants.values()].map(async g =>
      this.client.safeCall(g.peer, { op: 'fail', id: this.taskId, claimId: this.claimId, term: g.term, error: error.slice(0, 4096), unrecoverable })))
    this.done = true
    return { dead: answers.some(a => a.dead === true) }
  }

  async release (ran: boolean): Promise<void> {
    this.stopTimers()
    this.done = true
    await Promise.all([...this.grants.values()].map(async g =>
      this.client.safeCall(g.peer, { op: 'release', id: this.taskId, claimId: this.claimId, term: g.term, ran })))
  }

  private scheduleRenew (): void {
    this.renewTimer = setTimeout(() => { void this.renew() }, Math.max(1, this.client.leaseMs * this.client.renewFraction()))
  }

  private async renew (): Promise<void> {
    if (this.done) return
    const sentAt = Date.now()
    const answers = await Promise.all([...this.grants.values()].map(async g =>
      this.client.safeCall(g.peer, { op: 'renew', id: this.taskId, claimId: this.claimId, term: g.term, durationMs: this.client.leaseMs })))
    if (this.done) return
    if (answers.some(a => a.status === 'CANCELED')) return this.lose('task canceled')
    if (answers.filter(a => a.status === 'OK').length >= majority(this.replicas.length)) {
      this.expiresAt = sentAt + this.client.leaseMs
      this.armExpiry()
    }
    this.scheduleRenew()
  }

  private armExpiry (): void {
    clearTimeout(this.expiryTimer)
    this.expiryTimer = setTimeout(() => { this.lose('lease expired before a majority renewed it') }, Math.max(0, this.expiresAt - Date.now()))
  }

  private lose (reason: string): void {
    if (this.done) return
    this.done = true
    this.stopTimers()
    this.client.stats.lost++
    this.controller.abort(new LeaseLostError(reason))
  }

  private stopTimers (): void {
    clearTimeout(this.renewTimer)
    clearTimeout(this.expiryTimer)
  }
}
