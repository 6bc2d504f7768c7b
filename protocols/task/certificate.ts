import { createHash } from 'node:crypto'
import { z } from 'zod'
import { canonicalJson } from './canonical.js'
import { MAX_SIGNATURE_CHARS, verifySignature } from './vote-batch.js'
import { peerIdSchema, taskIdSchema } from './schema.js'

export const FINAL_STATES = ['completed', 'canceled', 'dead'] as const
export type FinalStateName = typeof FINAL_STATES[number]

/**
 * What a replica votes for: the one final outcome of a task's generation. A replica votes at most
 * once per generation, so two different values can never both gather a majority of one placement.
 */
export const finalValueSchema = z.object({
  state: z.enum(FINAL_STATES),
  /** the winning claim (completed only: dead and canceled name none, so their votes never split) */
  claimId: z.string().max(64).optional(),
  /** SHA-256 of the canonical result (completed only) */
  resultHash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** informative, not signed */
  reason: z.string().max(4096).optional()
}).strict()

export type FinalValue = z.infer<typeof finalValueSchema>

/** A vote's signature: its own, or a batch's with the vote's proof (vote-batch.ts). */
export const signatureSchema = z.string().max(MAX_SIGNATURE_CHARS)

/** One member's signed vote. `term` is the signer's own lease term for the claim (0 when none). */
export const voteSchema = z.object({
  peer: peerIdSchema,
  term: z.number().int().nonnegative(),
  sig: signatureSchema
}).strict()

export type Vote = z.infer<typeof voteSchema>

/** A majority of the placement's signatures over one (task, generation, epoch, value). */
export const certificateSchema = z.object({
  id: taskIdSchema,
  generation: z.number().int().nonnegative(),
  epoch: z.number().int().nonnegative(),
  value: finalValueSchema,
  votes: z.array(voteSchema).min(1).max(16)
}).strict()

export type Certificate = z.infer<typeof certificateSchema>

export interface Statement {
  id: string
  generation: number
  epoch: number
  term: number
  value: FinalValue
}

const DOMAIN = 'agentmesh/final/1'
const utf8 = new TextEncoder()

/**
 * The bytes a member signs: domain-separated, canonical, so every signer and checker agree. The
 * outcome is the state, the claim and the result hash; the reason is not signed, so members that
 * saw different reasons for one outcome (a deadline, spent attempts) still make one certificate.
 */
export function statementBytes (s: Statement): Uint8Array {
  const { state, claimId, resultHash } = s.value
  // canonicalJson({ id, generation, epoch, term, value: { state, claimId, resultHash } }), written
  // with its keys in their sorted order: it runs for every vote signed, checked or remembered
  let value = '{'
  if (claimId !== undefined) value += `"claimId":${canonicalJson(claimId)},`
  if (resultHash !== undefined) value += `"resultHash":${canonicalJson(resultHash)},`
  value += `"state":${canonicalJson(state)}}`
  return utf8.encode(`${DOMAIN}\n{"epoch":${canonicalJson(s.epoch)},"generation":${canonicalJson(s.generation)},"id":${canonicalJson(s.id)},"term":${canonicalJson(s.term)},"value":${value}}`)
}

/** The signed part of a value: what makes two votes the same outcome. */
export function outcomeKey (v: FinalValue): string {
  return canonicalJson({ state: v.state, claimId: v.claimId, resultHash: v.resultHash })
}

/**
 * A result object's hash, by identity. One result is hashed again and again on its way: when its
 * holder votes, when each member checks a vote or a commit, and at every read of a finished task
 * (a kept result counts only if it is the one certified). So a result must never be changed once
 * made: it is parsed from JSON, or the executor's copy of what an agent returned, and only read
 * after (a reader that wants to change one copies it, as submitChild does).
 */
const resultHashes = new WeakMap<object, string>()

export function resultHash (value: unknown): string {
  if (typeof value !== 'object' || value === null) return hashOf(value ?? null)
  let hash = resultHashes.get(value)
  if (hash === undefined) {
    hash = hashOf(value)
    resultHashes.set(value, hash)
  }
  return hash
}

const hashOf = (value: unknown): string => createHash('sha256').update(canonicalJson(value)).digest('hex')

export const majority = (n: number): number => Math.floor(n / 2) + 1

/** Same outcome: the state, the claim and the result hash (the reason is informative only). */
export function sameValue (a: FinalValue, b: FinalValue): boolean {
  // outcomeKey's fields, compared in place: each holder's vote is compared with every answer
  return a.state === b.state && a.claimId === b.claimId && a.resultHash === b.resultHash
}

/**
 * Votes known good, by signer, signature and statement: this node's own (it made them) and those it
 * checked. A check costs about 170 µs here, and every member used to check its own vote in each
 * certificate it stored.
 */
const goodVotes = new Set<string>()
const MAX_GOOD_VOTES = 50_000

function remember (key: string): void {
  if (goodVotes.size >= MAX_GOOD_VOTES) goodVotes.clear()
  goodVotes.add(key)
}

/** Vote signatures this process checked (votes it made, checked before or had from their signer are not; ed25519.ts may answer one from its memory of checks) */
export const signatureStats = { checked: 0 }

/** Records a vote this node signed itself, so certificates carrying it skip its check. */
export function signedHere (peer: string, statement: Uint8Array, sig: string): void {
  remember(voteKey(peer, sig, statement))
}

/**
 * Records a vote that its own signer sent this node in reply to its request as known good: the
 * connection is authenticated (Noise proves the peer), so checking the signature proves nothing
 * more here, and the vote is not checked again however it comes later. The signature still travels
 * in the certificate, for the nodes that get the vote from anyone else. With the holder's own vote
 * shown to the members (TrustedVote), two or three checks a task (about 170 µs each here) were most
 * of a daemon's signature work.
 */
export function sentBySigner (id: string, vote: { peer: string, generation: number, epoch: number, term: number, sig: string, value: FinalValue }): void {
  signedHere(vote.peer, statementBytes({ id, generation: vote.generation, epoch: vote.epoch, term: vote.term, value: vote.value }), vote.sig)
}

/** A digest, not the statement itself: a statement may carry a 4 KiB reason, and 50,000 are kept. */
function voteKey (peer: string, sig: string, statement: Uint8Array): string {
  return createHash('sha256').update(peer).update('\n').update(sig).update('\n').update(statement).digest('base64')
}

/** Whether `peer` signed `value` for this task, generation, epoch and term (one signature check). */
export function verifyVote (id: string, generation: number, epoch: number, vote: { peer: string, term: number, sig: string }, value: FinalValue): boolean {
  const statement = statementBytes({ id, generation, epoch, term: vote.term, value })
  const key = voteKey(vote.peer, vote.sig, statement)
  if (goodVotes.has(key)) return true
  signatureStats.checked++
  if (!verifySignature(vote.peer, statement, vote.sig)) return false
  remember(key)
  return true
}

export class InvalidCertificateError extends Error {
  static override name = 'InvalidCertificateError'
  constructor (message: string) { super(message); this.name = 'InvalidCertificateError' }
}

/** verified certificates by their canonical text: a certificate is checked once per process, not per read */
const verified = new Set<string>()

/**
 * Votes of one request that came from their own signer (the authenticated sender): taken without a
 * signature check for that request only, and a certificate holding one is not cached as checked.
 */
export type TrustedVote = (peer: string, sig: string) => boolean

/**
 * Throws InvalidCertificateError unless `cert` holds valid signatures of a majority of distinct
 * `members` over its statement. The members are the placement of the certificate's epoch.
 */
export function verifyCertificate (cert: Certificate, members: readonly string[], trusted?: TrustedVote): void {
  const key = verifiedKey(cert, members)
  if (verified.has(key)) return
  const signers = new Set<string>()
  let unchecked = false
  for (const v of cert.votes) {
    if (!members.includes(v.peer)) throw new InvalidCertificateError(`${v.peer} is not a member of epoch ${cert.epoch}`)
    if (signers.has(v.peer)) throw new InvalidCertificateError(`${v.peer} signed twice`)
    if (trusted?.(v.peer, v.sig) === true) unchecked = true
    else if (!verifyVote(cert.id, cert.generation, cert.epoch, v, cert.value)) throw new InvalidCertificateError(`bad signature from ${v.peer}`)
    signers.add(v.peer)
  }
  if (signers.size < majority(members.length)) throw new InvalidCertificateError(`${signers.size} of ${members.length} members signed; ${majority(members.length)} needed`)
  if (unchecked) return
  if (verified.size > 50_000) verified.clear()
  verified.add(key)
}

/**
 * What a check of `cert` against `members` depends on, as one string: the statement's fields, each
 * vote's signer, term and signature, and the members (the reason is not signed, so not in it). A
 * JSON array, so no crafted signature or claim id can pass for other fields; canonical JSON of the
 * whole certificate cost more than the checks it saved.
 */
function verifiedKey (cert: Certificate, members: readonly string[]): string {
  const votes: Array<string | number> = []
  for (const v of cert.votes) votes.push(v.peer, v.term, v.sig)
  return JSON.stringify([cert.id, cert.generation, cert.epoch, cert.value.state, cert.value.claimId ?? null, cert.value.resultHash ?? null, votes, members])
}

export function isValidCertificate (cert: Certificate, members: readonly string[], trusted?: TrustedVote): boolean {
  try {
    verifyCertificate(cert, members, trusted)
    return true
  } catch {
    return false
  }
}

/** Gathers votes for one value until they make a certificate. */
export function certify (id: string, generation: number, epoch: number, value: FinalValue, votes: Vote[], members: readonly string[]): Certificate | undefined {
  const distinct = new Map<string, Vote>()
  for (const v of votes) if (members.includes(v.peer)) distinct.set(v.peer, v)
  if (distinct.size < majority(members.length)) return undefined
  return { id, generation, epoch, value, votes: [...distinct.values()].sort((a, b) => a.peer < b.peer ? -1 : 1) }
}
