import { retryDelay } from '../replica/backoff.js'
import { resultHash, sameValue } from './certificate.js'
import { canonicalJson } from './canonical.js'
import { withEntries } from './journal.js'
import { capAttempts, failedAttempts, finalOf, hasValidFinal, isWaiting, mergeRecords, mustDecideOf, ownRetryTime, resultMatches, samePlacement, signalKey } from './record.js'
import type { BackoffOptions } from '../replica/backoff.js'
import type { LeaseRequest, LeaseResponse, ShownVote } from '../lease/messages.js'
import type { FinalValue, Statement, TrustedVote } from './certificate.js'
import type { Attempt, Placement, TaskRecord } from './record.js'
import type { CastVote, LeaseState, StoredResult } from './store.js'

/** What one replica holds of one task. */
export interface ReplicaTaskState {
  record?: TaskRecord
  lease: LeaseState
  result?: StoredResult
}

export interface MachineEnv {
  /** this replica's clock: leases and deadlines are judged by it, never by a peer's */
  now: number
  me: string
  /** the peer that sent the request */
  from: string
  backoff: BackoffOptions
  /** checks another member's signed vote (the one impure part, injected) */
  verifyVote: (id: string, vote: ShownVote) => boolean
  /** votes this request brought from their own signer, the sender: a commit takes them unchecked */
  trustedVote?: TrustedVote
}

export interface Transition {
  state: ReplicaTaskState
  reply: LeaseResponse
  /** a vote was cast: the caller signs this statement into `state.lease.vote` and `reply.vote` */
  sign?: Statement
}

export const EMPTY_LEASE: LeaseState = { term: 0, maxTerm: 0 }

/**
 * The one way a replica's state for a task moves (etcd's raft `Step` is the model): a pure function
 * of the state, the request and the replica's clock. Every decision a member makes is here, so the
 * table of (state, event) -> (state, reply) in its tests is the replica's whole behaviour.
 *
 * Safety rests on two rules: a member votes at most once per generation (so two outcomes never
 * both gather a majority of one placement), and it serves only the epoch it holds, unsealed.
 */
export function transition (s: ReplicaTaskState, req: LeaseRequest, env: MachineEnv): Transition {
  if (req.op === 'install') return install(s, req, env)
  const rec = s.record
  if (rec === undefined) return { state: s, reply: { status: 'UNKNOWN_TASK' } }
  if (!rec.placement.members.includes(env.me)) return { state: s, reply: { status: 'NOT_MEMBER', placement: rec.placement } }
  if (req.epoch !== rec.placement.epoch) return { state: s, reply: { status: 'WRONG_EPOCH', placement: rec.placement } }
  if ((s.lease.sealedEpoch ?? -1) >= req.epoch) {
    // a repeated seal for the same move is answered again; any other operation, or another move, is refused
    const same = req.op === 'seal' && ((s.lease.sealedFor !== undefined && samePlacement(s.lease.sealedFor, req.next)) || req.force === true)
    if (!same) return { state: s, reply: { status: 'SEALED', reason: `epoch ${req.epoch} moved away`, ...(s.lease.sealedFor === undefined ? {} : { placement: s.lease.sealedFor }) } }
  }
  const st = expireLapsed(s, env)
  const r = st.record as TaskRecord
  const lease = st.lease
  const live = isLive(lease, env.now)
  const holds = (claimId: string, term: number): boolean => live && lease.claimId === claimId && lease.term === term && lease.holder === env.from
  // a completed one with its result: a claimant that meets it brings both to members that lack them
  const finished = (): Transition => ({ state: st, reply: { status: 'FINISHED', state: r.final?.state, cert: r.final?.cert, ...(r.final?.state === 'completed' && resultMatches(r.final.cert.value, st.result) ? { result: st.result } : {}) } })
  const myVote = currentVote(st)
  // a completed vote comes with its result: whoever finishes the decision needs it for the commit
  const voted = (): Transition => ({ state: st, reply: { status: 'VOTED', vote: shown(myVote as CastVote, env.me), ...(myVote?.value.state === 'completed' && st.result?.claimId === myVote.value.claimId ? { result: st.result } : {}) } })
  // a move bound this epoch to the value the one before may have certified: no lease is granted and
  // nothing else is voted here, whichever way this member came to the epoch
  const bound = r.final === undefined && myVote === undefined ? mustDecideOf(r) : undefined

  switch (req.op) {
    case 'acquire': {
      if (r.final !== undefined) return finished()
      if (myVote !== undefined) return voted()
      if (bound !== undefined) return castBound(st, bound, lease.term, env, 'VOTED')
      if (live) {
        if (lease.claimId === req.claimId && lease.holder === env.from) return { state: st, reply: { status: 'OK', term: lease.term, expiresAt: lease.expiresAt, attempt: failedAttempts(r) + 1, generation: r.generation, placement: r.placement } }
        return { state: st, reply: { status: 'DENIED', holder: lease.holder, expiresAt: lease.expiresAt } }
      }
      if ((r.notBefore ?? 0) > env.now) return { state: st, reply: { status: 'RETRY_LATER', notBefore: r.notBefore } }
      if (isWaiting(r, env.now)) return { state: st, reply: { status: 'DENIED', reason: `waiting for the signal "${r.waiting?.name ?? ''}"` } }
      if (failedAttempts(r) >= r.task.maxAttempts) return { state: st, reply: { status: 'DENIED', reason: 'attempts spent' } }
      // past the deadline by this member's clock no attempt starts: the placement decides it dead
      if (env.now > r.task.deadline) return { state: st, reply: { status: 'DENIED', reason: 'past the deadline' } }
      const term = lease.maxTerm + 1
      const granted: LeaseState = { ...lease, claimId: req.claimId, holder: env.from, term, maxTerm: term, expiresAt: env.now + req.durationMs }
      const attempt: Attempt = { claimId: req.claimId, generation: r.generation, peer: env.from, startedAt: env.now, outcome: 'running' }
      // the grant names the placement it was made under, so a claimant cannot count it towards another
      return { state: { ...st, lease: granted, record: { ...r, attempts: capAttempts([...r.attempts, attempt], r.generation), updatedAt: env.now } }, reply: { status: 'OK', term, expiresAt: granted.expiresAt, attempt: failedAttempts(r) + 1, generation: r.generation, placement: r.placement } }
    }
    case 'renew': {
      // only a certified cancel stops the holder: a member's lone vote to cancel may still lose
      if (r.final?.state === 'canceled') return { state: st, reply: { status: 'CANCELED' } }
      if (r.final !== undefined) return finished()
      if (!holds(req.claimId, req.term)) return { state: st, reply: { status: 'DENIED', holder: live ? lease.holder : undefined, reason: 'not the holder' } }
      const renewed: LeaseState = { ...lease, expiresAt: env.now + req.durationMs, renewed: true }
      return { state: { ...st, lease: renewed }, reply: { status: 'OK', term: lease.term, expiresAt: renewed.expiresAt } }
    }
    case 'release': {
      if (lease.claimId !== req.claimId || lease.term !== req.term || lease.holder !== env.from) return { state: st, reply: { status: 'DENIED', reason: 'not the holder' } }
      const patch: Partial<Attempt> = req.ran ? { outcome: 'failed', endedAt: env.now, error: 'released by holder' } : { outcome: 'released', endedAt: env.now }
      const record = setAttempt(r, req.claimId, patch)
      return { state: { ...st, lease: clearHolder(lease), record: req.ran ? afterFailure(record, env) : record }, reply: { status: 'OK' } }
    }
    case 'vote': {
      if (r.final !== undefined) return finished()
      if (myVote !== undefined) return voted()
      if (!holds(req.claimId, req.term)) return { state: st, reply: { status: 'STALE_TERM', ...(lapsedAlone(r, lease, req.claimId, req.term) ? { lapsed: true } : {}) } }
      if (bound !== undefined) return castBound(st, bound, lease.term, env, 'VOTED')
      if (req.value.state === 'completed' ? req.value.claimId !== req.claimId : req.value.claimId !== undefined) return { state: st, reply: { status: 'ERROR', reason: 'a holder votes for its own claim\'s result, or for an outcome that names no claim' } }
      let result = st.result
      if (req.value.state === 'completed') {
        if (req.result === undefined || req.value.resultHash !== resultHash(req.result)) return { state: st, reply: { status: 'ERROR', reason: 'a completed vote needs its result, matching its hash' } }
        result = { claimId: req.value.claimId ?? req.claimId, peer: env.from, value: req.result, size: req.size ?? 0, at: env.now }
      }
      // the attempt stays running until a certificate says which claim won: only a commit marks it completed
      return cast({ ...st, result }, req.value, lease.term, env)
    }
    case 'fail': {
      if (r.final !== undefined) return finished()
      if (lease.claimId !== req.claimId || lease.term !== req.term || lease.holder !== env.from) return { state: st, reply: { status: 'STALE_TERM' } }
      const record = setAttempt(r, req.claimId, { outcome: 'failed', endedAt: env.now, error: req.error })
      const next = { ...st, lease: clearHolder(lease), record }
      const failures = failedAttempts(record)
      if (req.unrecoverable || failures >= r.task.maxAttempts) {
        if (myVote !== undefined) return { state: next, reply: { status: 'OK', vote: shown(myVote, env.me) } }
        if (bound !== undefined) return castBound(next, bound, lease.term, env, 'OK')
        const reason = req.unrecoverable ? req.error : `failed ${failures} of ${r.task.maxAttempts} attempts: ${req.error}`.slice(0, 4096)
        return cast(next, { state: 'dead', reason }, lease.term, env)
      }
      const backedOff = afterFailure(record, env)
      return { state: { ...next, record: backedOff }, reply: { status: 'OK', notBefore: backedOff.notBefore } }
    }
    case 'journal': {
      if (r.final !== undefined) return finished()
      if (!holds(req.claimId, req.term) || myVote !== undefined) return { state: st, reply: { status: 'STALE_TERM' } }
      // the holder's lease as each member granted it (this member's term its own): a later lease's step outranks it in a merge
      const entries: Array<[string, typeof req.value]> = [[req.key, req.value], ...(req.more ?? []).map(e => [e.key, e.value] as [string, typeof req.value])]
      const journal = withEntries(r.journal, entries, req.bare === true ? undefined : { ...req.terms, [env.me]: req.term })
      return { state: { ...st, record: { ...r, journal, updatedAt: env.now } }, reply: { status: 'OK' } }
    }
    case 'wait': {
      if (r.final !== undefined) return finished()
      // a claim this member already took back as waiting (a signal naming it came first): done
      if (lease.claimId === undefined && lease.term === req.term && r.attempts.some(a => a.claimId === req.claimId && a.outcome === 'suspended')) return { state: st, reply: { status: 'OK' } }
      if (!holds(req.claimId, req.term) || myVote !== undefined) return { state: st, reply: { status: 'STALE_TERM' } }
      const waiting = { name: req.name, claimId: req.claimId, since: env.now, until: env.now + req.timeoutMs, ...(req.schema === undefined ? {} : { schema: req.schema }) }
      const record = setAttempt({ ...r, waiting }, req.claimId, { outcome: 'suspended', endedAt: env.now })
      return { state: { ...st, lease: clearHolder(lease), record }, reply: { status: 'OK' } }
    }
    case 'signal': {
      // the journal holds chosen signals only (a majority kept them); this member's first-round
      // value for the wait now, not yet chosen, is in its lease state, which no copy merges
      const chosen = r.journal?.[signalKey(req.name)] as { data?: unknown } | undefined
      // a name is waited for once a task, and a redrive keeps the journal: a value kept here in an
      // earlier generation may have been chosen (a majority kept it, its second round fell short),
      // so it stands in every generation
      const accepted = lease.accepted?.[req.name]
      const sameAs = (kept: { data?: unknown } | undefined): boolean => kept !== undefined && canonicalJson(kept.data ?? null) === canonicalJson(req.data ?? null)
      // the same signal again (a sender retrying after a lost answer, or another node asked at the
      // same time) is answered OK whatever the task does now, as the first was
      const same = sameAs(chosen) || (chosen === undefined && sameAs(accepted))
      // a finished task's answer is its journal's: a value only kept here reached no run
      if (r.final !== undefined) return sameAs(chosen) ? { state: st, reply: { status: 'OK' } } : finished()
      // a member that missed the wait (it did not grant the lease that waited) keeps the signal too:
      // the sender checked a majority's view, and a lone member's refusal would leave the wait
      // stuck once the peer that waited is gone.
      // A live lease of the claim that waited is one this member never saw given back: that claim
      // renews no more, so it is taken back here as the wait would have
      const waited = live && req.waitClaimId !== undefined && lease.claimId === req.waitClaimId
      const freed = waited ? { ...st, lease: clearHolder(lease), record: setAttempt(r, req.waitClaimId as string, { outcome: 'suspended', endedAt: env.now }) } : st
      const otherData: Transition = { state: freed, reply: { status: 'NOT_WAITING', reason: `signal "${req.name}" was already given, with other data` } }
      if (req.chosen === true) {
        // the second round: a majority kept this value, so no other can be chosen. It goes into
        // the journal (over another value this member kept first), and the wait ends
        if (chosen !== undefined) return same ? { state: freed, reply: { status: 'OK' } } : otherData
        const { [req.name]: _kept, ...others } = freed.lease.accepted ?? {}
        const { notBefore: _n, ...rest } = freed.record as TaskRecord
        const journal = { ...rest.journal, [signalKey(req.name)]: { data: req.data, at: env.now } }
        const { accepted: _all, ...leaseRest } = freed.lease
        const leaseNow = Object.keys(others).length === 0 ? leaseRest : { ...leaseRest, accepted: others }
        return { state: { ...freed, lease: leaseNow, record: { ...rest, journal, updatedAt: env.now } }, reply: { status: 'OK' } }
      }
      if (same) return { state: freed, reply: { status: 'OK' } }
      if (isWaiting(r, env.now) && r.waiting?.name !== req.name) return { state: st, reply: { status: 'NOT_WAITING', reason: `waiting for "${r.waiting?.name ?? ''}", not "${req.name}"` } }
      if (live && !waited) return { state: st, reply: { status: 'NOT_WAITING', reason: 'the task is running, not waiting for a signal' } }
      // the first signal of a name stands: a second, different one (an approve after a reject) is refused,
      // so only one value can reach a majority
      if (chosen !== undefined || accepted !== undefined) return otherData
      // the first round: kept here, the task waits on until the sender, a majority's OK in hand,
      // sends the second, which writes it into the journal
      const kept = { data: req.data, at: env.now, generation: r.generation }
      return { state: { ...freed, lease: { ...freed.lease, accepted: { ...freed.lease.accepted, [req.name]: kept } } }, reply: { status: 'OK' } }
    }
    case 'cancel': {
      if (r.final !== undefined) return finished()
      if (myVote !== undefined) return voted()
      // a cancel of a task bound to a value votes that value: it may be certified already
      const t = bound !== undefined ? castBound(st, bound, lease.term, env, 'OK') : cast(st, { state: 'canceled', reason: 'canceled' }, lease.term, env)
      return { ...t, reply: { ...t.reply, holder: live ? lease.holder : undefined } }
    }
    case 'decide': {
      if (r.final !== undefined) return finished()
      if (myVote !== undefined) return voted()
      if (bound !== undefined) {
        const first = req.shown?.[0]
        if (first !== undefined && !sameValue(first.value, bound)) return { state: st, reply: { status: 'DENIED', reason: 'this epoch decides the outcome its move found, not the one shown' } }
        if (first !== undefined && bound.state === 'completed' && !resultMatches(bound, st.result)) return adopt(st, req.shown as ShownVote[], req.result, req.size, env)
        return castBound(st, bound, lease.term, env, 'OK')
      }
      if (live) return { state: st, reply: { status: 'DENIED', holder: lease.holder } }
      if (req.shown !== undefined && req.shown.length > 0) return adopt(st, req.shown, req.result, req.size, env)
      const failures = failedAttempts(r)
      if (failures >= r.task.maxAttempts) return cast(st, { state: 'dead', reason: `failed ${failures} of ${r.task.maxAttempts} attempts` }, lease.term, env)
      if (env.now > r.task.deadline) return cast(st, { state: 'dead', reason: r.attempts.some(a => a.generation === r.generation && a.outcome !== 'released') ? 'deadline passed' : 'unclaimed' }, lease.term, env)
      return { state: st, reply: { status: 'DENIED', reason: 'nothing to decide yet' } }
    }
    case 'commit': return commit(st, req, env)
    case 'redrive': {
      if (r.generation > req.generation) return { state: st, reply: { status: 'OK' } }
      if (r.final?.state !== 'dead' || r.generation !== req.generation) return { state: st, reply: { status: 'DENIED', reason: `task is ${r.final?.state ?? 'not dead'}` } }
      // a wait of the dead generation is over: the new one starts without it
      const { final: _f, notBefore: _n, waiting: _w, ...rest } = r
      return { state: { ...st, lease: clearHolder(lease), record: { ...rest, generation: r.generation + 1, updatedAt: env.now } }, reply: { status: 'OK' } }
    }
    case 'drop': {
      if (r.final?.state !== 'dead' || r.generation !== req.generation) return { state: st, reply: { status: 'DENIED', reason: `task is ${r.final?.state ?? 'not dead'}` } }
      return { state: { ...st, record: { ...r, droppedGeneration: r.generation, updatedAt: env.now } }, reply: { status: 'OK' } }
    }
    case 'seal': {
      if (req.next.epoch !== req.epoch + 1) return { state: st, reply: { status: 'ERROR', reason: 'a move goes to the next epoch' } }
      // a holder that voted has its outcome carried over by the move (mustDecide); one that renewed
      // here held a majority and ran, and can renew no more: its attempt is spent, and the record
      // handed over says so. A claim that never renewed may have been short of a majority, about to
      // give its grants back unrun: it is given back here (released), not spent. Left running, its
      // give-back then refused as SEALED, it named a holder that ran nothing, and was carried into
      // the next epoch, to be ended as superseded (counted) at the commit
      const ended = endClaimForMove(st, env, req.next.epoch)
      const sealed = { ...ended, lease: { ...ended.lease, sealedEpoch: req.epoch, sealedFor: req.next } }
      return { state: sealed, reply: { status: 'OK', record: ended.record as TaskRecord, ...(st.result === undefined ? {} : { result: st.result }), ...(myVote === undefined ? {} : { vote: shown(myVote, env.me) }) } }
    }
  }
}

/**
 * What a move to `nextEpoch` does to the claim this member granted (at its seal, or when it takes
 * a move it missed): see the seal's case in `transition`.
 */
export function endClaimForMove (st: ReplicaTaskState, env: Pick<MachineEnv, 'now' | 'backoff'>, nextEpoch: number): ReplicaTaskState {
  const myVote = currentVote(st)
  const moved = `the placement moved to epoch ${nextEpoch}`
  if (myVote !== undefined) return { ...st, lease: clearHolder(st.lease) }
  return st.lease.renewed === true ? endHeld(st, env, moved) : giveBackUnrun(st, env, `${moved} before the claim renewed here`)
}

/** This member's vote for the record's current generation, if it cast one. */
export function currentVote (s: ReplicaTaskState): CastVote | undefined {
  const v = s.lease.vote
  return v !== undefined && s.record !== undefined && v.generation === s.record.generation && v.epoch === s.record.placement.epoch ? v : undefined
}

export function isLive (lease: LeaseState | undefined, now: number): lease is LeaseState & { claimId: string, holder: string, expiresAt: number } {
  return lease?.claimId !== undefined && lease.expiresAt !== undefined && lease.expiresAt > now
}

/** A lapsed lease is a failed attempt (with a retry backoff); whether the task is dead is a majority's vote. */
export function expireLapsed (s: ReplicaTaskState, env: Pick<MachineEnv, 'now' | 'backoff'>): ReplicaTaskState {
  const { record, lease } = s
  if (record === undefined || lease.claimId === undefined || isLive(lease, env.now) || record.final !== undefined) return s
  return endHeld(s, env, 'lease expired')
}

/**
 * The lease's holder loses it here (it lapsed, or its epoch moved away): its running attempt is
 * spent, as a lapse spends it. A move that only cleared the holder left that attempt running in the
 * record, uncounted, and the next epoch granted one past maxAttempts.
 */
function endHeld (s: ReplicaTaskState, env: Pick<MachineEnv, 'now' | 'backoff'>, error: string): ReplicaTaskState {
  const running = runningClaim(s)
  if (running === undefined) return { ...s, lease: clearHolder(s.lease) }
  const expired = setAttempt(running.record, running.claimId, { outcome: 'expired', endedAt: env.now, error })
  return { ...s, lease: clearHolder(s.lease), record: afterFailure(expired, env) }
}

/** The record and the lease's claim, while that claim's attempt runs in an open task. */
function runningClaim (s: ReplicaTaskState): { record: TaskRecord, claimId: string } | undefined {
  const { record, lease } = s
  const attempt = lease.claimId === undefined ? undefined : record?.attempts.find(a => a.claimId === lease.claimId)
  return record === undefined || record.final !== undefined || attempt?.outcome !== 'running' ? undefined : { record, claimId: attempt.claimId }
}

/** The lease's claim, ended here as given back before it ran: no attempt spent, no holder named. */
function giveBackUnrun (s: ReplicaTaskState, env: Pick<MachineEnv, 'now'>, error: string): ReplicaTaskState {
  const running = runningClaim(s)
  if (running === undefined) return { ...s, lease: clearHolder(s.lease) }
  return { ...s, lease: clearHolder(s.lease), record: setAttempt(running.record, running.claimId, { outcome: 'released', endedAt: env.now, error }) }
}

function cast (s: ReplicaTaskState, value: FinalValue, term: number, env: MachineEnv): Transition {
  const r = s.record as TaskRecord
  const vote: CastVote = { generation: r.generation, epoch: r.placement.epoch, term, value, sig: '' }
  return {
    state: { ...s, lease: { ...s.lease, vote } },
    reply: { status: 'OK', vote: shown(vote, env.me) },
    sign: { id: r.task.id, generation: r.generation, epoch: r.placement.epoch, term, value }
  }
}

/**
 * The vote of an epoch bound to a value (see Placement.mustDecide), in place of a grant or another
 * vote. A completed value is voted only by a member that holds its result: the others are shown
 * the votes with it by the decision (the sweeper's decide), as after split answers.
 */
function castBound (s: ReplicaTaskState, value: FinalValue, term: number, env: MachineEnv, status: 'OK' | 'VOTED'): Transition {
  if (value.state === 'completed' && !resultMatches(value, s.result)) return { state: s, reply: { status: 'DENIED', reason: 'this epoch decides the outcome its move found, whose result this member lacks' } }
  const t = cast(s, value, term, env)
  // with its result, so that a decision gathering this vote can show both to members that lack it
  return { ...t, reply: { ...t.reply, status, ...(value.state === 'completed' && s.result !== undefined ? { result: s.result } : {}) } }
}

/** Votes for the value other members' signed votes carry: how a stuck decision is finished. */
function adopt (s: ReplicaTaskState, votes: ShownVote[], result: unknown, size: number | undefined, env: MachineEnv): Transition {
  const r = s.record as TaskRecord
  const first = votes[0] as ShownVote
  for (const v of votes) {
    if (!r.placement.members.includes(v.peer) || v.generation !== r.generation || v.epoch !== r.placement.epoch || !sameValue(v.value, first.value) || !env.verifyVote(r.task.id, v)) {
      return { state: s, reply: { status: 'ERROR', reason: `shown vote of ${v.peer} is not valid here` } }
    }
  }
  // dead is a judgement of time and attempts: a member adopts it only when its own clock and its
  // own history agree, so one member whose clock runs ahead cannot talk the others into it
  if (first.value.state === 'dead' && failedAttempts(r) < r.task.maxAttempts && env.now <= r.task.deadline) {
    return { state: s, reply: { status: 'DENIED', reason: 'not dead by this member\'s own clock and attempts' } }
  }
  let next = s
  if (first.value.state === 'completed') {
    if (result === undefined || resultHash(result) !== first.value.resultHash) return { state: s, reply: { status: 'ERROR', reason: 'adopting a completed vote needs its result' } }
    next = { ...s, result: { claimId: first.value.claimId ?? '', peer: first.peer, value: result as StoredResult['value'], size: size ?? 0, at: env.now } }
  }
  return cast(next, first.value, s.lease.term, env)
}

function commit (s: ReplicaTaskState, req: Extract<LeaseRequest, { op: 'commit' }>, env: MachineEnv): Transition {
  const r = s.record as TaskRecord
  const c = req.cert
  const v = c.value
  const final = finalOf(c, env.now)
  if (r.final !== undefined) return { state: s, reply: r.final.generation === c.generation && sameValue(r.final.cert.value, v) ? { status: 'OK' } : { status: 'FINISHED', state: r.final.state, cert: r.final.cert } }
  if (c.generation !== r.generation || !hasValidFinal(r, final, env.trustedVote)) return { state: s, reply: { status: 'ERROR', reason: 'certificate not valid for this task' } }
  let result = s.result
  let resultSize: number | undefined
  if (v.state === 'completed') {
    const candidate = resultMatches(v, s.result) ? s.result : req.result
    if (candidate === undefined || !resultMatches(v, candidate)) return { state: s, reply: { status: 'ERROR', reason: 'a completed certificate needs its result' } }
    result = candidate
    resultSize = candidate.size
  }
  const winner = v.claimId
  // the certified claim completed; any other attempt still open here was superseded. Its error says
  // what ended it (this copy may have missed the holder's own report): "lease expired" misled readers
  const superseded = v.state === 'completed' ? 'superseded: another claim\'s result was certified' : (v.reason ?? v.state)
  const attempts = r.attempts.map(a => a.claimId === winner && v.state === 'completed'
    ? { ...a, outcome: 'completed' as const, endedAt: a.endedAt ?? env.now }
    : a.outcome === 'running' && a.generation === c.generation ? { ...a, outcome: 'expired' as const, endedAt: env.now, error: superseded } : a)
  // a member that never granted the winning claim still records it, so every copy's history names it
  if (v.state === 'completed' && winner !== undefined && !attempts.some(a => a.claimId === winner)) {
    attempts.push({ claimId: winner, generation: c.generation, peer: result?.peer ?? '', startedAt: env.now, endedAt: env.now, outcome: 'completed' })
  }
  const record: TaskRecord = { ...r, attempts, final: { ...final, ...(winner === undefined ? {} : { peer: r.attempts.find(a => a.claimId === winner)?.peer ?? result?.peer }), ...(resultSize === undefined ? {} : { resultSize }) }, updatedAt: env.now }
  if (record.final?.peer === undefined && record.final !== undefined) delete record.final.peer
  return { state: { ...s, record, result, lease: clearHolder(s.lease) }, reply: { status: 'OK' } }
}

function install (s: ReplicaTaskState, req: Extract<LeaseRequest, { op: 'install' }>, env: MachineEnv): Transition {
  const incoming = req.record
  if (incoming.placement.epoch !== req.epoch || !incoming.placement.members.includes(env.me)) return { state: s, reply: { status: 'NOT_MEMBER', placement: incoming.placement } }
  const mine = s.record
  if ((s.lease.sealedEpoch ?? -1) >= req.epoch) return { state: s, reply: { status: 'SEALED', reason: `epoch ${req.epoch} moved away` } }
  if (mine !== undefined && (mine.placement.epoch > req.epoch || (mine.placement.epoch === req.epoch && !samePlacement(mine.placement, incoming.placement)))) return { state: s, reply: { status: 'WRONG_EPOCH', placement: mine.placement } }
  // a final state comes in only with its certificate, checked before the merge so that a forged
  // one can never displace this member's own
  const { final: incomingFinal, ...incomingRest } = incoming
  const checked: TaskRecord = incomingFinal !== undefined && hasValidFinal(mine === undefined ? incoming : { ...incoming, previous: [...(incoming.previous ?? []), ...(mine.previous ?? []), mine.placement] }) ? incoming : incomingRest
  const merged = ownRetryTime(mine === undefined ? checked : mergeRecords(mine, checked), mine, env.now, env.backoff.capMs)
  // the value to decide binds the epoch in the record itself, for whoever takes the move from this
  // member; a binding already there (a repeated install) is the one voted. An install of a
  // generation this member has left (redriven since) binds nothing: that decision is over
  const forced = mustDecideOf(merged) ?? (incoming.generation === merged.generation ? req.mustDecide : undefined)
  const record = forced !== undefined && mustDecideOf(merged) === undefined ? { ...merged, placement: { ...merged.placement, mustDecide: { generation: merged.generation, value: forced } } } : merged
  // lease and vote of an older epoch stay behind with it; the term keeps counting up. An install
  // repeated at a member that holds this epoch already (a mover that learnt the move late, or
  // retried it) leaves the epoch's lease alone: its holder may be running the task
  const { vote: _old, ...kept } = clearHolder(s.lease)
  const lease: LeaseState = mine?.placement.epoch === req.epoch ? s.lease : { ...kept, ...(currentVote(s)?.epoch === req.epoch ? { vote: s.lease.vote } : {}) }
  // the result of the value to decide, when this member kept another (the other side of split votes)
  const result = forced !== undefined && !resultMatches(forced, s.result) && resultMatches(forced, req.result) ? req.result : s.result ?? req.result
  const next: ReplicaTaskState = { record, lease, result }
  const already = currentVote(next)
  if (forced === undefined || record.final !== undefined) return { state: next, reply: { status: 'OK', ...(already === undefined ? {} : { vote: shown(already, env.me) }) } }
  if (already !== undefined) return { state: next, reply: { status: 'VOTED', vote: shown(already, env.me) } }
  if (forced.state === 'completed' && (next.result === undefined || resultHash(next.result.value) !== forced.resultHash)) return { state: s, reply: { status: 'ERROR', reason: 'the value to decide needs its result' } }
  return cast(next, forced, lease.term, env)
}

function shown (vote: CastVote, peer: string): ShownVote {
  return { ...vote, peer }
}

/** The lease with no holder: what a release, a failure, a wait, a commit or a move leaves. */
export function clearHolder (lease: LeaseState): LeaseState {
  const { claimId: _c, holder: _h, expiresAt: _e, renewed: _r, ...rest } = lease
  return rest
}

/**
 * Whether a claim's lease ran out here and nothing else happened to the task since: no later grant
 * here (the term is the claim's), its attempt of this generation expired (not released, suspended
 * or redriven past), and no other attempt of the generation is running or done. A vote refused then
 * is refused for this member's clock alone, not for a rival's claim.
 */
function lapsedAlone (r: TaskRecord, lease: LeaseState, claimId: string, term: number): boolean {
  if (lease.holder !== undefined || lease.term !== term) return false
  const own = r.attempts.find(a => a.claimId === claimId)
  if (own?.outcome !== 'expired' || own.generation !== r.generation) return false
  return !r.attempts.some(a => a.claimId !== claimId && a.generation === r.generation && (a.outcome === 'running' || a.outcome === 'completed'))
}

/** After a failed attempt that leaves budget: the next one waits a backoff every member computes alike. */
function afterFailure (record: TaskRecord, env: Pick<MachineEnv, 'now' | 'backoff'>): TaskRecord {
  const failures = failedAttempts(record)
  if (failures >= record.task.maxAttempts) return { ...record, updatedAt: env.now }
  return { ...record, notBefore: env.now + retryDelay(record.task.id, failures, env.backoff), updatedAt: env.now }
}

function setAttempt (record: TaskRecord, claimId: string, patch: Partial<Attempt>): TaskRecord {
  return { ...record, attempts: record.attempts.map(a => a.claimId === claimId ? { ...a, ...patch } : a), updatedAt: patch.endedAt ?? record.updatedAt }
}
