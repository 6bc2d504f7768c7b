import { certify, sameValue, signedHere, statementBytes, verifyVote } from '../task/certificate.js'
import { transition } from '../task/machine.js'
import { hasValidId } from '../task/schema.js'
import type { LeaseRequest, LeaseResponse, ShownVote } from '../lease/messages.js'
import type { MachineEnv, Transition } from '../task/machine.js'
import type { TaskRecord } from '../task/record.js'
import type { ReplicaStats } from './replica-init.js'

/*
 * The parts of serving a lease request that are not the state machine's: signing the vote it cast,
 * the commit folded into a vote, and the counters. Pure but for the signature.
 */

/** Signs a vote's statement: the signature as a vote carries it (vote-batch.ts). */
export type SignStatement = (statement: Uint8Array) => Promise<string>

/** Signs the vote a transition cast (its statement), in the new state and in the reply. */
export async function signVote (t: Transition, me: string, sign: SignStatement): Promise<boolean> {
  if (t.sign === undefined || t.state.lease.vote === undefined) return false
  const statement = statementBytes(t.sign)
  const sig = await sign(statement)
  signedHere(me, statement, sig)
  t.state.lease.vote = { ...t.state.lease.vote, sig }
  if (t.reply.vote !== undefined) t.reply.vote = { ...t.reply.vote, sig }
  return true
}

/**
 * The commit folded into a vote: when this member's fresh vote and the votes shown with the request
 * make a certificate, the commit transition runs on the voted state and both go to disk in one
 * write. A shown vote that is not valid leaves the vote alone, uncommitted.
 */
export function commitShown (t: Transition, shown: ShownVote[], env: MachineEnv): Transition {
  const own = t.reply.vote
  const r = t.state.record
  if (t.reply.status !== 'OK' || own === undefined || r === undefined) return t
  const others = shown.filter(v => v.peer !== env.me && v.generation === own.generation && v.epoch === own.epoch && sameValue(v.value, own.value))
  const cert = certify(r.task.id, own.generation, own.epoch, own.value, [own, ...others].map(v => ({ peer: v.peer, term: v.term, sig: v.sig })), r.placement.members)
  if (cert === undefined) return t
  const c = transition(t.state, { op: 'commit', id: r.task.id, epoch: own.epoch, cert }, env)
  if (c.reply.status !== 'OK') return t
  return { state: c.state, reply: { ...t.reply, committed: true } }
}

/**
 * An acquire that carries a vote (a run made before the claim): once granted, the vote is cast on
 * the granted state and goes to disk in the grant's write, and with the votes shown it may make the
 * certificate there too. A vote this member cannot cast leaves the grant alone: the holder asks
 * for it the usual way.
 */
export async function voteGranted (t: Transition, req: Extract<LeaseRequest, { op: 'acquire' }>, env: MachineEnv, me: string, sign: SignStatement): Promise<{ done: Transition, signed: boolean }> {
  const ahead = req.vote
  if (ahead === undefined || t.reply.status !== 'OK' || t.reply.term === undefined) return { done: t, signed: false }
  const vote: LeaseRequest = { op: 'vote', id: req.id, epoch: req.epoch, claimId: req.claimId, term: t.reply.term, value: ahead.value, ...(ahead.result === undefined ? {} : { result: ahead.result }), ...(ahead.size === undefined ? {} : { size: ahead.size }) }
  const v = transition(t.state, vote, env)
  if (v.reply.status !== 'OK') return { done: t, signed: false }
  const signed = await signVote(v, me, sign)
  const done = ahead.shown === undefined ? v : commitShown(v, ahead.shown, env)
  return { done: { state: done.state, reply: { ...t.reply, ...(done.reply.vote === undefined ? {} : { vote: done.reply.vote }), ...(done.reply.committed === true ? { committed: true } : {}) } }, signed }
}

/** The votes a request brings from others: shown with a vote (or an acquire's), or a commit's certificate. */
export function shownWith (req: LeaseRequest): Array<{ peer: string, sig: string }> {
  if (req.op === 'vote') return req.shown ?? []
  if (req.op === 'commit') return req.cert.votes
  if (req.op === 'acquire') return req.vote?.shown ?? []
  return []
}

/** A task as its submitter made it, for member `me`: valid id, this placement, nothing happened yet. */
export function isNewRecord (record: TaskRecord, id: string, epoch: number, me: string): boolean {
  return record.task.id === id && hasValidId(record.task) && record.placement.members.includes(me) && record.placement.epoch === epoch &&
    record.generation === 0 && record.attempts.length === 0 && record.final === undefined && record.previous === undefined
}

/** Counts a served request: grants and denials, stale results, results committed. */
export function countAnswer (stats: ReplicaStats, req: LeaseRequest, reply: LeaseResponse): void {
  if (req.op === 'acquire') {
    if (reply.status === 'OK') stats.grants++
    else stats.denials++
  }
  // a vote refused for the lapse alone is no rival's: not counted beside duplicate executions
  if ((reply.status === 'STALE_TERM' && reply.lapsed !== true) || (req.op === 'vote' && (reply.status === 'VOTED' || reply.status === 'FINISHED') && reply.vote?.value.claimId !== req.claimId)) stats.staleResults++
  if ((req.op === 'commit' && reply.status === 'OK') || reply.committed === true) stats.results++
}

export function verifyShownVote (id: string, v: ShownVote): boolean {
  return verifyVote(id, v.generation, v.epoch, v, v.value)
}
