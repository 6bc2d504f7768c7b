import { resultHash, sameValue } from '../task/certificate.js'
import { isBadRequest } from '../rpc/served.js'
import type { Answer, LeaseClient, Target } from './client.js'
import type { Certificate, FinalValue } from '../task/certificate.js'
import type { StoredResult } from '../task/store.js'
import type { LeaseRequest, LeaseResponse } from './messages.js'

/** A run made before its claim: the result (a JSON copy) and its size; `cert` once a majority voted for it with their grants. */
export interface Prerun {
  result: unknown
  size: number
  /** how long the run took */
  ms: number
  cert?: Certificate
}

type Acquire = Extract<LeaseRequest, { op: 'acquire' }>

/**
 * The claim of a task its submitter ran before claiming it (a pure agent): each acquire carries
 * the vote for that outcome. The holder's own member grants and votes first, in one write; the
 * other members are shown that vote, so each grants, votes and stores the certificate in one write
 * too: one request a member for the whole task, where a claim and then a vote are two, each with
 * its fsync. A member that refuses the field (a peer from before it) is asked the plain acquire,
 * and one that grants without voting is asked for its vote the usual way (HeldLease.complete).
 */
export class PrerunVotes {
  private readonly value: FinalValue
  private own?: Promise<LeaseResponse>

  constructor (private readonly client: LeaseClient, private readonly t: Target, private readonly req: Acquire, private readonly ran: Prerun) {
    this.value = { state: 'completed', claimId: req.claimId, resultHash: resultHash(ran.result) }
  }

  /** The acquire to `peer`, with the vote; never throws. */
  async acquire (peer: string): Promise<LeaseResponse> {
    const self = this.client.self
    const vote = { value: this.value, result: this.ran.result as never, size: this.ran.size }
    if (this.t.placement.members.includes(self)) this.own ??= this.client.safeCall(self, { ...this.req, vote })
    if (peer === self && this.own !== undefined) return await this.own
    const mine = this.own === undefined ? undefined : (await this.own).vote
    const shown = mine !== undefined && mine.peer === self && sameValue(mine.value, this.value) ? [mine] : undefined
    const res = await this.client.safeCall(peer, { ...this.req, vote: { ...vote, ...(shown === undefined ? {} : { shown }) } })
    return isBadRequest(res) ? await this.client.safeCall(peer, this.req) : res
  }

  /** How many of these answers carry their member's vote for this run's outcome. */
  votes (answers: Answer[]): number {
    return answers.filter(a => a.res.vote !== undefined && a.res.vote.peer === a.peer && sameValue(a.res.vote.value, this.value)).length
  }

  /** The run without a certificate: the holder asks for the votes the usual way. */
  uncertified (): Prerun {
    return { result: this.ran.result, size: this.ran.size, ms: this.ran.ms }
  }

  /**
   * The run with the certificate its grants' votes make, once a majority of the placement stored
   * it; without one when they fall short (the holder then asks for votes the usual way). A member
   * still answering is not sent the certificate: it stores it with its own vote, or, answering
   * without it, is sent it then (`all`: every answer, once in).
   */
  async certify (generation: number, answers: Answer[], all: Promise<Answer[]>): Promise<Prerun> {
    const kept: StoredResult = { claimId: this.req.claimId, peer: this.client.self, value: this.ran.result as never, size: this.ran.size, at: Date.now() }
    const pending = this.t.placement.members.filter(m => !answers.some(a => a.peer === m))
    const cert = await this.client.certifyAndCommit(this.t, generation, answers, kept, pending)
    if (cert === undefined || !sameValue(cert.value, this.value)) return this.uncertified()
    this.client.stats.votedWithGrants++
    if (pending.length > 0) this.client.commitLater(this.t, cert, kept, all, pending)
    return { ...this.ran, cert }
  }
}
