import { certify, majority, outcomeKey, resultHash } from '../task/certificate.js'
import { DEFAULT_ASK_AGAIN_MS, DEFAULT_LEASE_MS, DEFAULT_RENEW_FRACTION, DEFAULT_VOTE_WAIT_MS } from './constants.js'
import { DeadlockedVotesError, QuorumUnavailableError, TaskFinishedError, TaskNotWaitingError, refusal } from './errors.js'
import { PrerunVotes } from './prerun-votes.js'
import { HeldLease, monotonicNow } from './held-lease.js'
import { untilQuorum } from './quorum.js'
import { claimIdSchema } from './messages.js'
import { isBadRequest } from '../rpc/served.js'
import { samePlacement } from '../task/record.js'
import { randomHex } from '../task/random-hex.js'
import type { Certificate } from '../task/certificate.js'
import type { Placement, TaskRecord } from '../task/record.js'
import type { StoredResult } from '../task/store.js'
import type { Prerun } from './prerun-votes.js'
import type { LeaseRequest, LeaseResponse, ShownVote } from './messages.js'
import type { Logger } from '@libp2p/interface'

/** Sends a lease request to one member (the local replica directly, others over the wire). */
export type LeaseCaller = (peer: string, req: LeaseRequest) => Promise<LeaseResponse>

export interface LeaseClientInit {
  /** this peer's id: the executor of the results it reports */
  self: string
  call: LeaseCaller
  /** pushes the task record to a member that does not know it yet */
  pushRecord: (peer: string, taskId: string) => Promise<void>
  /** @default 10_000 */
  leaseMs?: number
  /** @default 1/3 */
  renewFraction?: number
  /** how long a claim that carries its vote waits for a majority of votes once a majority granted. @default 100 */
  voteWaitMs?: number
  /** how long a holder waits before asking again the members that did not answer its vote, step, wait or failure report. @default 250 */
  askAgainMs?: number
  log: Logger
}

export interface LeaseClientStats {
  acquired: number
  denied: number
  lost: number
  certified: number
  /** claims that met a finished task and gave its certificate to members that lacked it */
  repaired: number
  /** claims that carried their task's vote (a pure agent's run before the claim) and were certified with the grants */
  votedWithGrants: number
  /** votes, steps, waits and failure reports asked again of members that did not answer a round short of a majority */
  askedAgain: number
}

/** Which task, at which pinned placement: every operation goes to these members and no others. */
export interface Target {
  id: string
  placement: Placement
}

export interface Answer {
  peer: string
  res: LeaseResponse
}

export { majority }

/**
 * The client side of the lease protocol: every majority operation goes through `ask` to the
 * task's pinned placement and needs a majority of its full size, never of the reachable part.
 */
export class LeaseClient {
  readonly stats: LeaseClientStats = { acquired: 0, denied: 0, lost: 0, certified: 0, repaired: 0, votedWithGrants: 0, askedAgain: 0 }
  private readonly init: LeaseClientInit
  /** late grants being given back: a stopping node waits for them (settled) before its endpoints close */
  private readonly givingBack = new Set<Promise<unknown>>()
  /** answers made of a call that failed (no answer in time, no stream): only these are asked again */
  private readonly failedCalls = new WeakSet<LeaseResponse>()
  /** aborted once the node stops: no round is asked again past it */
  private readonly stopping = new AbortController()

  constructor (init: LeaseClientInit) {
    this.init = init
  }

  get leaseMs (): number {
    return this.init.leaseMs ?? DEFAULT_LEASE_MS
  }

  get self (): string {
    return this.init.self
  }

  get askAgainMs (): number {
    return this.init.askAgainMs ?? DEFAULT_ASK_AGAIN_MS
  }

  renewFraction (): number {
    return this.init.renewFraction ?? DEFAULT_RENEW_FRACTION
  }

  /** Aborted once `stopAsking` is called: a round waiting to ask again ends at once. */
  get stopSignal (): AbortSignal {
    return this.stopping.signal
  }

  /** The node stops: rounds short of a majority are not asked again (HeldLease.askAgain). */
  stopAsking (): void {
    this.stopping.abort()
  }

  /** Whether `res` stands for a call that failed (no answer came), not a member's answer. */
  callFailed (res: LeaseResponse): boolean {
    return this.failedCalls.has(res)
  }

  /** One request to each of `peers`, all at once; a failed call is an ERROR answer, never a throw. */
  async ask (peers: readonly string[], req: LeaseRequest | ((peer: string) => LeaseRequest)): Promise<Answer[]> {
    return Promise.all(peers.map(async peer => ({ peer, res: await this.safeCall(peer, typeof req === 'function' ? req(peer) : req) })))
  }

  /**
   * Like `ask`, but `early` resolves as soon as `need` answers pass `ok`, or once that can no longer
   * happen: a paused or cut-off member must not hold a lease, a renewal or a commit up until its
   * RPC times out. `all` resolves with every answer. `plain`: the request without a newer field, sent
   * again to a peer from before that field, which refuses it as a bad request.
   */
  askUntil (peers: readonly string[], req: LeaseRequest | ((peer: string) => LeaseRequest), need: number, ok: (a: Answer) => boolean, plain?: (peer: string) => LeaseRequest): { early: Promise<Answer[]>, all: Promise<Answer[]>, own: Promise<Answer> | undefined } {
    let own: Promise<Answer> | undefined
    const call = async (peer: string): Promise<LeaseResponse> => {
      const answer = (async () => {
        const res = await this.safeCall(peer, typeof req === 'function' ? req(peer) : req)
        return plain !== undefined && isBadRequest(res) ? this.safeCall(peer, plain(peer)) : res
      })()
      if (peer === this.init.self) own = answer.then(res => ({ peer, res }))
      return answer
    }
    const { early, all } = untilQuorum(peers, call, need, res => ok({ peer: '', res }))
    const answers = async (p: Promise<Array<{ peer: string, result: LeaseResponse }>>): Promise<Answer[]> => (await p).map(e => ({ peer: e.peer, res: e.result }))
    return { early: answers(early), all: answers(all), own }
  }

  /**
   * Resolves with a held lease, or throws LeaseDeniedError, TaskFinishedError or QuorumUnavailableError.
   * `record`: the task's new record, which each member that lacks it stores with its grant (a submit
   * that runs the task here: one request per member instead of a put and an acquire).
   */
  async acquire (t: Target, record?: TaskRecord, prerun?: Prerun): Promise<HeldLease> {
    const claimId = randomHex(8)
    const sentAt = monotonicNow()
    const req: LeaseRequest = { op: 'acquire', id: t.id, epoch: t.placement.epoch, claimId, durationMs: this.leaseMs, ...(record === undefined ? {} : { record }) }
    const need = majority(t.placement.members.length)
    // a grant counts only if the member granted under the very placement asked: a claimant with a
    // partial or stale list of members must not count grants towards a smaller majority
    const granted = (a: Answer): boolean => a.res.status === 'OK' && a.res.term !== undefined && samePlacement(a.res.placement, t.placement)
    const voted = prerun === undefined ? undefined : new PrerunVotes(this, t, req, prerun)
    const call = async (peer: string): Promise<LeaseResponse> => {
      const res = voted === undefined ? await this.safeCall(peer, req) : await voted.acquire(peer)
      if (res.status !== 'UNKNOWN_TASK') return res
      await this.init.pushRecord(peer, t.id).catch(() => {})
      return this.safeCall(peer, req)
    }
    const answers: Answer[] = []
    const calls: Array<Promise<void>> = []
    let held: HeldLease | undefined
    let decided = false
    const release = async (a: Answer): Promise<void> => {
      await this.safeCall(a.peer, { op: 'release', id: t.id, epoch: t.placement.epoch, claimId, term: a.res.term as number, ran: false })
    }
    let giveUp: ReturnType<typeof setTimeout> | undefined
    let voteWait: ReturnType<typeof setTimeout> | undefined
    const early = new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(giveUp); clearTimeout(voteWait); resolve() }
      const check = (): void => {
        const grantedAnswers = answers.filter(granted)
        const grants = grantedAnswers.length
        const pending = t.placement.members.length - answers.length
        // a claim with its vote waits for a majority of votes while one can still come: with grants
        // alone the holder would ask for the votes again, in a second round
        const votes = voted === undefined ? need : voted.votes(grantedAnswers)
        if ((grants >= need && (votes >= need || votes + pending < need)) || grants + pending < need) done()
        else if (grants >= need && voteWait === undefined) voteWait = setTimeout(done, this.init.voteWaitMs ?? DEFAULT_VOTE_WAIT_MS)
      }
      // a claim still short of a majority after a renewal period gives up and gives back what it got:
      // waiting longer on a silent member lets its partial grants lapse, and a lapse counts as an attempt
      giveUp = setTimeout(done, Math.max(1, this.leaseMs * this.renewFraction()))
      for (const peer of t.placement.members) {
        calls.push(call(peer).then(res => {
          const a = { peer, res }
          answers.push(a)
          // a grant that arrives after the claim was decided joins the lease, or is ended as the
          // lease ended (HeldLease.endLateGrant); one for a claim that fell short, and one made
          // under another placement, which never counts, are given back
          if (a.res.status === 'OK' && a.res.term !== undefined && !granted(a)) this.givenBack(release(a))
          else if (decided && granted(a)) {
            if (held?.held === true) held.grants.set(a.peer, a.res.term as number)
            else if (held !== undefined) this.givenBack(held.endLateGrant(a.peer, a.res.term as number))
            else this.givenBack(release(a))
          }
          check()
        }))
      }
      check()
    })
    await early
    decided = true
    // answers still on their way may be grants to give back: a stop waits for them too
    this.givenBack(Promise.allSettled(calls))
    const grants = answers.filter(granted)
    // a dead end of a generation before the one granted is a member that missed the redrive since:
    // no end of this generation, so it is sent the record that brings the redrive
    const current = Math.max(0, ...grants.map(g => g.res.generation ?? 0))
    const missedRedrive = (a: Answer): boolean => a.res.status === 'FINISHED' && a.res.state === 'dead' && a.res.cert !== undefined && a.res.cert.generation < current
    for (const a of answers.filter(missedRedrive)) void this.init.pushRecord(a.peer, t.id).catch(() => {})
    // a certified outcome outranks any number of grants: nothing is left to run
    const finished = answers.find(a => a.res.status === 'FINISHED' && !missedRedrive(a))
    if (finished !== undefined) {
      await Promise.all(grants.map(release))
      void Promise.all(calls).then(async () => this.repairFinished(t, finished.res, answers)).catch(() => {})
      throw new TaskFinishedError(finished.res.state ?? 'finished')
    }
    if (grants.length >= need) {
      this.stats.acquired++
      // the grantors' histories differ (one may have missed an earlier grant): the longest counts
      const attempt = Math.max(1, ...grants.map(g => g.res.attempt ?? 1))
      const generation = Math.max(0, ...grants.map(g => g.res.generation ?? 0))
      held = new HeldLease(this, t, claimId, new Map(grants.map(g => [g.peer, g.res.term as number])), sentAt + this.leaseMs, attempt, generation)
      if (voted !== undefined) held.prerun = await voted.certify(generation, answers, Promise.all(calls).then(() => answers)).catch(() => voted.uncertified())
      return held
    }
    // a claim that falls short gives back what it got, so it blocks nobody until expiry
    await Promise.all(grants.map(release))
    this.stats.denied++
    throw refusal(answers.filter(a => !missedRedrive(a)), `${grants.length} of ${t.placement.members.length} members granted; ${need} needed`)
  }

  /**
   * Resolves once every late grant being given back has its answer (or its request failed). A node
   * that stopped without waiting left such a grant live on its member until it lapsed, and the
   * member refused every other claim meanwhile.
   */
  async settled (withinMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    // a member that does not answer in time lets its grant lapse, as before: a stop is not held up
    const late = new Promise<void>(resolve => { timer = setTimeout(resolve, withinMs) })
    const all = (async () => { while (this.givingBack.size > 0) await Promise.allSettled([...this.givingBack]) })()
    try {
      await Promise.race([all, late])
    } finally {
      clearTimeout(timer)
    }
  }

  private givenBack (giving: Promise<unknown>): void {
    this.givingBack.add(giving)
    void giving.catch(() => {}).finally(() => { this.givingBack.delete(giving) })
  }

  /**
   * A member that answered a claim with anything but FINISHED, where another showed the certificate,
   * missed the commit; its copy draws claims for ever (each dates it anew, so anti-entropy takes it
   * for a copy in flux and leaves it). It is given the certificate and the result it names.
   */
  private async repairFinished (t: Target, finished: LeaseResponse, answers: Answer[]): Promise<void> {
    const lagging = answers.filter(a => a.res.status !== 'FINISHED' && a.res.status !== 'ERROR').map(a => a.peer)
    if (finished.cert === undefined || lagging.length === 0) return
    this.stats.repaired += lagging.length
    await this.ask(lagging, { op: 'commit', id: t.id, epoch: t.placement.epoch, cert: finished.cert, ...(finished.result === undefined ? {} : { result: finished.result }) })
  }

  /**
   * Turns votes into a certified final state: when a majority of the placement voted one value,
   * the certificate goes to every member (with the result it names) and resolves once a majority
   * took it (a member writes it without an fsync of its own when that write casts no vote and
   * brings no result: the votes are on their signers' disks, and rebuild it; see Replica.persist).
   * Undefined when no value has a majority.
   */
  async certifyAndCommit (t: Target, generation: number, answers: Answer[], result?: StoredResult, voting: readonly string[] = []): Promise<Certificate | undefined> {
    // not a dead end of an earlier generation: a member that missed the redrive since shows one
    const finished = answers.find(a => a.res.cert !== undefined && a.res.cert.generation >= generation)?.res.cert
    let cert = finished
    if (cert === undefined) {
      const votes = answers.map(a => a.res.vote).filter((v): v is ShownVote => v !== undefined && v.generation === generation && v.epoch === t.placement.epoch)
      for (const group of groupByValue(votes)) {
        cert = certify(t.id, generation, t.placement.epoch, (group[0] as ShownVote).value, group.map(v => ({ peer: v.peer, term: v.term, sig: v.sig })), t.placement.members)
        if (cert !== undefined) break
      }
    }
    if (cert === undefined) return undefined
    const kept = result ?? answers.map(a => a.res.result).find(r => r !== undefined && r.claimId === cert.value.claimId && resultHash(r.value) === cert.value.resultHash)
    const need = majority(t.placement.members.length)
    // members that stored the certificate with their vote, and those whose vote (carrying the
    // votes it completes) is still on its way, are not sent it again
    const committed = new Set(answers.filter(a => a.res.status === 'OK' && a.res.committed === true).map(a => a.peer))
    const targets = t.placement.members.filter(m => !committed.has(m) && !voting.includes(m))
    const commits = await this.askUntil(targets, { op: 'commit', id: t.id, epoch: t.placement.epoch, cert, ...(kept === undefined ? {} : { result: kept }) }, Math.max(0, need - committed.size), a => a.res.status === 'OK').early
    const stored = committed.size + commits.filter(c => c.res.status === 'OK').length
    if (finished === undefined) this.stats.certified++
    // the votes already sit on a majority's disk: a commit short of a majority is finished by recovery
    if (stored < need) this.init.log('certificate of %s stored on %d of %d members', t.id, stored, t.placement.members.length)
    return cert
  }

  /** Once `answers` are in, sends the certificate to each of `peers` whose answer did not say it stored it. */
  commitLater (t: Target, cert: Certificate, result: StoredResult, answers: Promise<Answer[]>, peers: readonly string[]): void {
    void answers.then(async got => {
      const missed = got.filter(a => peers.includes(a.peer) && (a.res.status !== 'OK' || a.res.committed !== true)).map(a => a.peer)
      if (missed.length > 0) await this.ask(missed, { op: 'commit', id: t.id, epoch: t.placement.epoch, cert, result })
    }).catch(() => {})
  }

  /**
   * Recovery of a task no holder will finish: asks each member to vote by its own state (out of
   * attempts, past its deadline) and, when votes split, shows the largest group to the others.
   * Throws DeadlockedVotesError when every member voted and no outcome has a majority.
   */
  async decide (t: Target, generation: number): Promise<Certificate | undefined> {
    const base = { id: t.id, epoch: t.placement.epoch }
    const answers = await this.ask(t.placement.members, { op: 'decide', ...base })
    const done = await this.certifyAndCommit(t, generation, answers)
    if (done !== undefined) return done
    const votes = answers.map(a => a.res.vote).filter((v): v is ShownVote => v !== undefined && v.generation === generation)
    const largest = groupByValue(votes)[0]
    if (largest === undefined) return undefined
    const result = answers.map(a => a.res.result).find(r => r !== undefined && r.claimId === largest[0]?.value.claimId)
    const undecided = answers.filter(a => a.res.vote === undefined && a.res.status !== 'FINISHED').map(a => a.peer)
    const more = await this.ask(undecided, { op: 'decide', ...base, shown: largest, ...(result === undefined ? {} : { result: result.value, size: result.size }) })
    const all = [...answers, ...more]
    const cert = await this.certifyAndCommit(t, generation, all, result)
    if (cert === undefined && deadlocked(t, generation, all)) throw new DeadlockedVotesError(`every member voted in epoch ${t.placement.epoch} and the votes split so that no outcome has a majority`)
    return cert
  }

  /**
   * Delivers a signal to a waiting task in two rounds (see the `signal` op): resolves once a
   * majority of its placement kept it and then wrote it into the task's journal.
   * `waitClaimId`: the claim that waited. Throws TaskNotWaitingError when a majority says the task
   * does not wait for it.
   */
  async signal (t: Target, name: string, data: unknown, waitClaimId?: string): Promise<void> {
    const need = majority(t.placement.members.length)
    const plain: LeaseRequest = { op: 'signal', id: t.id, epoch: t.placement.epoch, name, data: data as never }
    // a record's claim id that no member's schema takes would have every member refuse the signal
    const named = waitClaimId !== undefined && claimIdSchema.safeParse(waitClaimId).success ? { ...plain, waitClaimId } : plain
    const asked = this.askUntil(t.placement.members, named, need, a => a.res.status === 'OK', named === plain ? undefined : () => plain)
    let answers = await asked.early
    if (answers.filter(a => a.res.status === 'OK').length >= need) {
      // kept by a majority, so chosen: the second round writes it into the journal, and the task
      // may run on (a member from before waitClaimId is asked without it, as in the first round)
      const chosen = (req: LeaseRequest): LeaseRequest => ({ ...req, chosen: true } as LeaseRequest)
      const marking = this.askUntil(t.placement.members, chosen(named), need, a => a.res.status === 'OK', named === plain ? undefined : () => chosen(plain))
      const marks = await marking.early
      if (marks.filter(a => a.res.status === 'OK').length >= need) return
      const told = await withOwn(marking.own, marks)
      throw refusal(told, `signal kept by a majority, written into the journal by ${told.filter(a => a.res.status === 'OK').length} of ${t.placement.members.length} members: send it again`)
    }
    answers = await withOwn(asked.own, answers)
    const notWaiting = answers.filter(a => a.res.status === 'NOT_WAITING' || a.res.status === 'FINISHED')
    if (notWaiting.length >= need) throw new TaskNotWaitingError(notWaiting[0]?.res.reason ?? `the task is ${notWaiting[0]?.res.state ?? 'finished'}`)
    throw refusal(answers, `signal kept by ${answers.filter(a => a.res.status === 'OK').length} of ${t.placement.members.length} members`)
  }

  async safeCall (peer: string, req: LeaseRequest): Promise<LeaseResponse> {
    try {
      return await this.init.call(peer, req)
    } catch (err: any) {
      this.init.log('lease %s to %s failed: %s', req.op, peer, err.message)
      const failed: LeaseResponse = { status: 'ERROR', reason: String(err.message) }
      this.failedCalls.add(failed)
      return failed
    }
  }
}

/**
 * A refused round's answers, with this node's own when it is a member and had not answered: local,
 * so quick, where a paused member is not waited for. A refusal counted without it said "kept by 0"
 * of a signal this node's copy kept (dead members fail at once, before the local write).
 */
async function withOwn (own: Promise<Answer> | undefined, answers: Answer[]): Promise<Answer[]> {
  if (own === undefined) return answers
  const mine = await own
  return answers.some(a => a.peer === mine.peer) ? answers : [...answers, mine]
}

/** Vote groups of one value each, largest first (ties in a fixed order, so every caller picks alike). */
function groupByValue (votes: ShownVote[]): ShownVote[][] {
  const groups = new Map<string, ShownVote[]>()
  for (const v of votes) {
    const key = outcomeKey(v.value)
    groups.set(key, [...(groups.get(key) ?? []).filter(x => x.peer !== v.peer), v])
  }
  return [...groups.entries()].sort(([ka, a], [kb, b]) => b.length - a.length || (ka < kb ? -1 : 1)).map(([, g]) => g)
}

/** Whether every member's vote of this generation and epoch is among `answers`, and no value has a majority of them. */
function deadlocked (t: Target, generation: number, answers: Answer[]): boolean {
  // a vote counts for the member that answered with it, as its own
  const votes = answers.map(a => a.res.vote).filter((v, i): v is ShownVote => v !== undefined && v.peer === answers[i]?.peer && v.generation === generation && v.epoch === t.placement.epoch && t.placement.members.includes(v.peer))
  if (new Set(votes.map(v => v.peer)).size < t.placement.members.length) return false
  return (groupByValue(votes)[0]?.length ?? 0) < majority(t.placement.members.length)
}
