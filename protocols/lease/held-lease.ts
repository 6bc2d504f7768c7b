import { majority, resultHash, sameValue } from '../task/certificate.js'
import { LeaseLostError, QuorumUnavailableError, StaleTermError, refusal } from './errors.js'
import { isBadRequest } from '../rpc/served.js'
import type { Answer, LeaseClient, Target } from './client.js'
import type { Certificate, FinalValue } from '../task/certificate.js'
import type { StoredResult } from '../task/store.js'
import type { Prerun } from './prerun-votes.js'
import type { LeaseRequest, ShownVote } from './messages.js'

/**
 * Milliseconds on a clock that only moves forward at a steady rate: a holder times its lease by it.
 * By the wall clock, a step back during a renewal's round trip (NTP, an operator) kept a lapsed lease
 * held for as long as the step, and a step forward dropped a live one.
 */
export const monotonicNow = (): number => performance.now()

/**
 * A lease this peer holds. It renews itself at a fixed fraction of the lease; when it cannot renew
 * with a majority before the lease would lapse (by this peer's monotonic clock, counted from when
 * each request was sent, so that a step of the wall clock neither stretches nor cuts it), or a
 * member says the task was canceled or finished, `signal` aborts.
 */
export class HeldLease {
  readonly target: Target
  readonly claimId: string
  /** member -> the term it granted */
  readonly grants: Map<string, number>
  /** which attempt of the task this lease is for (1 for the first), as the grantors count */
  readonly attempt: number
  /**
   * the generation the grantors' copies are at (the highest): a holder whose own copy is older, or a
   * new one made from an announcement, runs and reports the generation the members vote in
   */
  readonly generation: number
  private readonly client: LeaseClient
  private readonly controller = new AbortController()
  /** when the lease lapses, on the monotonic clock (monotonicNow) */
  private expiresAt: number
  private renewTimer?: ReturnType<typeof setTimeout>
  private expiryTimer?: ReturnType<typeof setTimeout>
  private done = false
  private certifiedResult = false
  /** the failure this lease reported: a grant that comes after the report is told it too */
  private failure?: { error: string, unrecoverable: boolean }
  /** a run made before the claim, and the certificate its grants' votes made, if they did (PrerunVotes) */
  prerun?: Prerun

  constructor (client: LeaseClient, target: Target, claimId: string, grants: Map<string, number>, expiresAt: number, attempt: number, generation = 0) {
    this.client = client
    this.generation = generation
    this.target = target
    this.claimId = claimId
    this.grants = grants
    this.attempt = attempt
    this.expiresAt = expiresAt
    this.armExpiry()
    this.scheduleRenew()
  }

  get taskId (): string {
    return this.target.id
  }

  get signal (): AbortSignal {
    return this.controller.signal
  }

  get held (): boolean {
    return !this.done && !this.controller.signal.aborted
  }

  /** its result was certified: every member not known to have stored the certificate was sent it */
  get certified (): boolean {
    return this.certifiedResult
  }

  private need (): number {
    return majority(this.target.placement.members.length)
  }

  private held1 (op: 'renew' | 'release' | 'fail' | 'journal' | 'vote' | 'wait'): (peer: string) => { id: string, epoch: number, claimId: string, term: number } {
    return peer => ({ id: this.target.id, epoch: this.target.placement.epoch, claimId: this.claimId, term: this.grants.get(peer) ?? 1, op })
  }

  /**
   * Asks the members that granted to vote for this result; resolves with the certificate once a
   * majority signed it, and throws StaleTermError when another outcome won (a duplicate execution).
   * One member votes first, the holder itself when it is a member, else the member that granted
   * first, and the others are shown that vote: with theirs it makes the certificate (in a placement
   * of 3; larger ones need more votes than two), which each of them stores in the same write, so
   * only the first voter and members that did not vote are sent a commit.
   */
  async complete (result: unknown, size: number, generation: number): Promise<Certificate> {
    this.stopTimers()
    const value: FinalValue = { state: 'completed', claimId: this.claimId, resultHash: resultHash(result) }
    // voted and certified with the grants already
    const certified = this.prerun?.cert
    if (certified !== undefined && sameValue(certified.value, value)) {
      this.done = true
      this.certifiedResult = true
      return certified
    }
    const vote = (peer: string, shown?: ShownVote): LeaseRequest => ({ ...this.held1('vote')(peer), op: 'vote', value, result: result as never, size, ...(shown === undefined ? {} : { shown: [shown] }) })
    const votedFor = (a: Answer): boolean => a.res.vote !== undefined && sameValue(a.res.vote.value, value)
    const me = this.client.self
    const first = this.grants.has(me) ? me : this.grants.keys().next().value
    const mine = first === undefined ? [] : await this.firstVote(first, vote(first))
    const own = mine.find(votedFor)?.res.vote
    // a first voter that did not answer in time is asked again with the others, the old way
    const others = [...this.grants.keys()].filter(p => p !== first || mine.length === 0)
    const answers = [...mine, ...await this.client.askUntil(others, peer => vote(peer, own), this.need() - (own === undefined ? 0 : 1), votedFor).early]
    const asked = [...mine.map(a => a.peer), ...others]
    // a peer from before shown votes refuses the field as a bad request: it is asked the old way
    const older = own === undefined || answers.filter(votedFor).length >= this.need() ? [] : answers.filter(a => isBadRequest(a.res))
    if (older.length > 0) {
      const again = await this.client.ask(older.map(a => a.peer), peer => vote(peer))
      for (const a of again) answers[answers.findIndex(x => x.peer === a.peer)] = a
    }
    await this.askAgain(asked, answers, peer => vote(peer, own), votedFor, peer => vote(peer))
    this.done = true
    // a member whose grant joined the lease after the votes were asked is asked too, shown the same
    // vote: with it, it stores the certificate with its own vote in one write, where a commit would
    // have it check the other voters' signatures (under load, most tasks have one such member)
    const late = own === undefined ? [] : [...this.grants.keys()].filter(p => p !== first && !others.includes(p))
    const lateVotes = Promise.all(late.map(async peer => ({ peer, res: await this.client.safeCall(peer, vote(peer, own)) })))
    const voting = own === undefined ? [] : others.filter(p => !answers.some(a => a.peer === p))
    const kept: StoredResult = { claimId: this.claimId, peer: me, value: result as never, size, at: Date.now() }
    const cert = await this.certify(generation, answers, kept, voting, late, lateVotes)
    if (cert !== undefined && sameValue(cert.value, value)) {
      this.certifiedResult = true
      return cert
    }
    const ok = answers.filter(votedFor).length
    // a member that answers VOTED with its vote for this very result (the holder's own, cast with its
    // grant) refused nothing: the round fell short for want of answers, and the silent members may
    // still make the certificate when they answer, with this claim; nor did one whose refusal says
    // only that this claim's lease lapsed by its clock, no later claim granted there
    const refused = (a: Answer): boolean => (a.res.status === 'STALE_TERM' && a.res.lapsed !== true) || a.res.status === 'FINISHED' || (a.res.status === 'VOTED' && !votedFor(a))
    if (cert !== undefined || answers.some(refused)) {
      throw new StaleTermError(`result refused: ${ok} of ${this.target.placement.members.length} members voted for it`)
    }
    throw new QuorumUnavailableError(`result voted by ${ok} of ${this.target.placement.members.length} members; ${this.need()} needed`)
  }

  /**
   * Asks again the members of `asked` whose call failed (no answer in time, no stream), or whose
   * answer had not come when the round settled short, after askAgainMs, then twice as long each
   * time, while they could still make a majority, the lease lasts by this peer's clock, the run
   * still holds it and the node is not stopping. What is asked is idempotent: a member that did it
   * answers as it did (a vote with the vote it cast), and one past the lease by its own clock
   * refuses. A member's own refusal is not asked again. `plain`: the request a peer from before
   * the request's newest field is asked instead.
   */
  private async askAgain (asked: readonly string[], answers: Answer[], req: (peer: string) => LeaseRequest, passed: (a: Answer) => boolean, plain?: (peer: string) => LeaseRequest): Promise<void> {
    for (let pauseMs = this.client.askAgainMs; ; pauseMs *= 2) {
      const ok = answers.filter(passed).length
      if (ok >= this.need()) return
      const silent = asked.filter(peer => {
        const a = answers.find(x => x.peer === peer)
        return a === undefined || this.client.callFailed(a.res)
      })
      if (ok + silent.length < this.need() || !await this.pause(pauseMs)) return
      this.client.stats.askedAgain += silent.length
      for (const a of await this.client.askUntil(silent, req, this.need() - ok, passed, plain).early) {
        const i = answers.findIndex(x => x.peer === a.peer)
        if (i < 0) answers.push(a)
        else answers[i] = a
      }
    }
  }

  /** Waits `ms`; false at once, or when cut short, if the lease would lapse first, is lost, or the node stops. */
  private async pause (ms: number): Promise<boolean> {
    const signals = [this.controller.signal, this.client.stopSignal]
    const ended = (): boolean => signals.some(s => s.aborted)
    if (ended() || this.expiresAt - monotonicNow() <= ms) return false
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        for (const s of signals) s.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      for (const s of signals) s.addEventListener('abort', done, { once: true })
    })
    return !ended()
  }

  /**
   * The certificate the answers make, committed to the members that lack it. The `late` members'
   * votes (`lateVotes`, on their way) complete a certificate the first answers fell short of, and
   * a late member that did not store the certificate with its vote is sent it.
   */
  private async certify (generation: number, answers: Answer[], kept: StoredResult, voting: string[], late: string[], lateVotes: Promise<Answer[]>): Promise<Certificate | undefined> {
    if (late.length === 0) return this.client.certifyAndCommit(this.target, generation, answers, kept, voting)
    const cert = await this.client.certifyAndCommit(this.target, generation, answers, kept, [...voting, ...late])
    if (cert === undefined) {
      answers.push(...await lateVotes)
      return this.client.certifyAndCommit(this.target, generation, answers, kept, voting)
    }
    this.client.commitLater(this.target, cert, kept, lateVotes, late)
    return cert
  }

  /**
   * The first vote. Another member gets a third of the lease left to answer: a paused one must not
   * hold the others' votes up until the lease lapses. None when it did not answer in time.
   */
  private async firstVote (peer: string, req: LeaseRequest): Promise<Answer[]> {
    const call = this.client.safeCall(peer, req)
    if (peer === this.client.self) return [{ peer, res: await call }]
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, Math.max(1, (this.expiresAt - monotonicNow()) / 3)) })
    const res = await Promise.race([call, late])
    clearTimeout(timer)
    return res === undefined ? [] : [{ peer, res }]
  }

  /** Reports a failed attempt; resolves with the certificate when it made the task dead. */
  async fail (error: string, unrecoverable: boolean, generation: number): Promise<Certificate | undefined> {
    this.stopTimers()
    const failure = { error: error.slice(0, 4096), unrecoverable }
    this.failure = failure
    // done before the reports go: a grant that comes now is sent the report by endLateGrant
    this.done = true
    const report = (peer: string): LeaseRequest => ({ ...this.held1('fail')(peer), op: 'fail', ...failure })
    const asked = [...this.grants.keys()]
    const answers = await this.client.ask(asked, report)
    // a report a majority lost would leave the attempt to lapse with the lease, and an unrecoverable
    // failure to be run again (a member that took it answers the next ask as stale: not asked again)
    await this.askAgain(asked, answers, report, a => a.res.status === 'OK')
    if (answers.every(a => a.res.vote === undefined)) return undefined
    return this.client.certifyAndCommit(this.target, generation, answers)
  }

  /**
   * A member's grant that came after this lease ended. A failed attempt's report goes to it too:
   * given back unrun instead (a fast agent fails before the third member's grant arrives), that
   * member counted one failure less and kept the attempt as released, so its copy's history and
   * attempt count differed from the others'. Otherwise the grant is given back, burning nothing
   * (after a lost lease that member still keeps the attempt as released where the others count it
   * expired); after a certified result there is nothing to give back (it was sent the certificate).
   */
  async endLateGrant (peer: string, term: number): Promise<void> {
    if (this.certifiedResult) return
    const base = { id: this.target.id, epoch: this.target.placement.epoch, claimId: this.claimId, term }
    await this.client.safeCall(peer, this.failure === undefined ? { ...base, op: 'release', ran: false } : { ...base, op: 'fail', ...this.failure })
  }

  /**
   * Writes a durable step on a majority, under this lease, and `more` entries with it (at most
   * MAX_JOURNAL_ENTRIES in all), `bare`: without the lease's terms (withEntries); throws when it cannot.
   */
  async journal (key: string, value: unknown, more: Array<{ key: string, value: unknown }> = [], bare = false): Promise<void> {
    const terms = Object.fromEntries(this.grants)
    const step = (peer: string, withTerms: boolean): LeaseRequest => ({ ...this.held1('journal')(peer), op: 'journal', key, value: value as never, ...(more.length === 0 ? {} : { more: more as never }), ...(bare ? { bare } : { ...(withTerms ? { terms } : {}) }) })
    // a peer from before the terms refuses the field as a bad request: it is asked again the old way
    const asked = [...this.grants.keys()]
    const answers = await this.client.askUntil(asked, peer => step(peer, true), this.need(), a => a.res.status === 'OK', peer => step(peer, false)).early
    await this.askAgain(asked, answers, peer => step(peer, true), a => a.res.status === 'OK', peer => step(peer, false))
    const ok = answers.filter(a => a.res.status === 'OK').length
    if (ok < this.need()) throw refusal(answers, `step journaled on ${ok} of ${this.target.placement.members.length} members`)
  }

  /**
   * The agent waits for the signal `name`: the members that granted record the wait and take the
   * lease back, no attempt spent. Throws unless a majority did.
   */
  async suspend (name: string, timeoutMs: number, schema?: Record<string, unknown>): Promise<void> {
    this.stopTimers()
    const wait = (peer: string): LeaseRequest => ({ ...this.held1('wait')(peer), op: 'wait', name, timeoutMs, ...(schema === undefined ? {} : { schema: schema as never }) })
    const asked = [...this.grants.keys()]
    const answers = await this.client.askUntil(asked, wait, this.need(), a => a.res.status === 'OK').early
    await this.askAgain(asked, answers, wait, a => a.res.status === 'OK')
    this.done = true
    // a grant that joined the lease meanwhile is told the wait too: its copy would count the attempt expired
    const late = [...this.grants.keys()].filter(p => !asked.includes(p))
    if (late.length > 0) answers.push(...await this.client.ask(late, wait))
    const ok = answers.filter(a => a.res.status === 'OK').length
    if (ok < this.need()) throw refusal(answers, `wait recorded on ${ok} of ${this.target.placement.members.length} members`)
  }

  /** Gives the lease back. `ran: false` (a node stopping, a partial claim) burns no attempt. */
  async release (ran: boolean): Promise<void> {
    this.stopTimers()
    this.done = true
    await this.client.ask([...this.grants.keys()], peer => ({ ...this.held1('release')(peer), op: 'release', ran }))
  }

  private scheduleRenew (): void {
    this.renewTimer = setTimeout(() => { void this.renew() }, Math.max(1, this.client.leaseMs * this.client.renewFraction()))
  }

  private async renew (): Promise<void> {
    if (this.done) return
    const sentAt = monotonicNow()
    const answers = await this.client.askUntil([...this.grants.keys()], peer => ({ ...this.held1('renew')(peer), op: 'renew', durationMs: this.client.leaseMs }), this.need(), a => a.res.status === 'OK').early
    if (this.done) return
    if (answers.some(a => a.res.status === 'CANCELED')) return this.lose('task canceled')
    const finished = answers.find(a => a.res.status === 'FINISHED')
    if (finished !== undefined) return this.lose(`task is ${finished.res.state ?? 'finished'}`)
    if (answers.filter(a => a.res.status === 'OK').length >= this.need()) {
      this.expiresAt = sentAt + this.client.leaseMs
      this.armExpiry()
    }
    this.scheduleRenew()
  }

  private armExpiry (): void {
    clearTimeout(this.expiryTimer)
    this.expiryTimer = setTimeout(() => { this.lose('lease expired before a majority renewed it') }, Math.max(0, this.expiresAt - monotonicNow()))
  }

  /** Stops renewing and aborts the agent. */
  lose (reason: string): void {
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
