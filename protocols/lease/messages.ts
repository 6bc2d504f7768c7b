import { z } from 'zod'
import { jsonValue } from '../task/json-value.js'
import { certificateSchema, finalValueSchema } from '../task/certificate.js'
import { placementSchema, taskRecordSchema } from '../task/record.js'
import { JOURNAL_KEY_RULE, isJournalKey } from '../task/journal.js'
import { peerIdSchema, taskIdSchema } from '../task/schema.js'
import { castVoteSchema, storedResultSchema } from '../task/store.js'

/** Every operation names the epoch of the placement it was sent to: another epoch is refused. */
const task = { id: taskIdSchema, epoch: z.number().int().nonnegative() }
/** Journal entries one journal request may write. */
export const MAX_JOURNAL_ENTRIES = 512

/** a claim id names an attempt in records, events and logs: plain characters only */
export const claimIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'claim id: 1-64 letters, digits, _ or -')
const claim = { ...task, claimId: claimIdSchema }
const held = { ...claim, term: z.number().int().positive() }
/** the longest lease a member grants: an hour (a longer `leaseMs` is refused in the options) */
export const MAX_LEASE_MS = 3_600_000
const duration = z.number().int().min(1).max(MAX_LEASE_MS)
/** the longest a task may wait for a signal: 30 days */
export const MAX_WAIT_MS = 30 * 24 * 3600_000
/** the longest name of a signal */
export const MAX_WAIT_NAME = 200

/** Another member's signed vote, shown to make this member adopt the same value. */
export const shownVoteSchema = castVoteSchema.extend({ peer: peerIdSchema }).strict()
export type ShownVote = z.infer<typeof shownVoteSchema>

/** What an acquire carries of a run made before it: the vote the member casts once it granted. */
export const prerunVoteSchema = z.object({ value: finalValueSchema, result: jsonValue().optional(), size: z.number().int().nonnegative().optional(), shown: z.array(shownVoteSchema).max(16).optional() }).strict()
export type PrerunVote = z.infer<typeof prerunVoteSchema>

export const leaseRequestSchema = z.discriminatedUnion('op', [
  /**
   * `record`: a task just submitted, which a member that lacks it stores in the grant's own write.
   * `vote`: the outcome of a run made before the claim (a pure agent's, by the claimant), voted in
   * that same write once granted, with the holder's own vote `shown` (see the `vote` op)
   */
  z.object({ op: z.literal('acquire'), ...claim, durationMs: duration, record: taskRecordSchema.optional(), vote: prerunVoteSchema.optional() }).strict(),
  z.object({ op: z.literal('renew'), ...held, durationMs: duration }).strict(),
  /** gives the lease back; `ran: false` (a partial claim, or a node stopping before it ran) burns no attempt */
  z.object({ op: z.literal('release'), ...held, ran: z.boolean() }).strict(),
  /**
   * the holder's vote request for its outcome: completed with its result, or dead. `shown`: votes
   * other members already cast for the same value (the holder's own, when it is a member); when
   * they and this member's vote make a certificate, the member stores it in the same write
   */
  z.object({ op: z.literal('vote'), ...held, value: finalValueSchema, result: jsonValue().optional(), size: z.number().int().nonnegative().optional(), shown: z.array(shownVoteSchema).max(16).optional() }).strict(),
  /** a failed attempt; when it spends the budget (or is unrecoverable) the answer carries a vote for dead */
  z.object({ op: z.literal('fail'), ...held, error: z.string().max(4096), unrecoverable: z.boolean() }).strict(),
  /** a durable agent step, written only by the live holder */
  z.object({
    op: z.literal('journal'),
    ...held,
    key: z.string().refine(isJournalKey, JOURNAL_KEY_RULE),
    value: jsonValue(),
    /** further entries written with it, under the same lease (a fan-out's subtask ids: one write, not one each) */
    more: z.array(z.object({ key: z.string().refine(isJournalKey, JOURNAL_KEY_RULE), value: jsonValue() }).strict()).max(MAX_JOURNAL_ENTRIES - 1).optional(),
    /** the entries are kept without the lease's terms (withEntries: a run's subtask ids, each under a key of its own), an id's entry a third the size */
    bare: z.boolean().optional(),
    /** the terms the holder's lease was granted at, by member: a later lease's step wins where copies differ */
    terms: z.record(z.string().max(128), z.number().int().nonnegative()).refine(t => Object.keys(t).length <= 16, 'at most 16 members').optional()
  }).strict(),
  /** a user's cancel: a vote for canceled unless this member already voted */
  z.object({ op: z.literal('cancel'), ...task }).strict(),
  /** the holder's agent waits for a signal: the lease is given back and the task waits, no attempt spent */
  z.object({ op: z.literal('wait'), ...held, name: z.string().min(1).max(MAX_WAIT_NAME), timeoutMs: z.number().int().min(1).max(MAX_WAIT_MS), schema: z.record(z.string(), jsonValue()).optional() }).strict(),
  /**
   * a signal for a waiting task, from anyone, in two rounds: kept by each member (its lease state:
   * the task still waits, and a member keeps the first value it was sent), then, once a majority kept
   * it, again with `chosen`: written into the journal, and the task may be claimed again.
   * `waitClaimId`: the claim that waited, as the sender's copy says; a member that missed the wait
   * and still sees that claim's lease live takes it back (the claim renews no more once it waits)
   */
  z.object({ op: z.literal('signal'), ...task, name: z.string().min(1).max(MAX_WAIT_NAME), data: jsonValue(), waitClaimId: claimIdSchema.optional(), chosen: z.literal(true).optional() }).strict(),
  /**
   * Recovery: this member's vote, cast now if its own state decides it (no live lease and past the
   * deadline by its own clock, or the attempts spent), or for the value `shown` votes carry.
   */
  z.object({ op: z.literal('decide'), ...task, shown: z.array(shownVoteSchema).max(16).optional(), result: jsonValue().optional(), size: z.number().int().nonnegative().optional() }).strict(),
  /** stores a certified final state (and the result it certifies) */
  z.object({ op: z.literal('commit'), ...task, cert: certificateSchema, result: storedResultSchema.optional() }).strict(),
  z.object({ op: z.literal('redrive'), ...task, generation: z.number().int().nonnegative() }).strict(),
  z.object({ op: z.literal('drop'), ...task, generation: z.number().int().nonnegative() }).strict(),
  /**
   * phase one of a move: this member stops serving the epoch and hands over what it holds; it
   * seals for one next placement only, unless an operator forces another
   */
  z.object({ op: z.literal('seal'), ...task, next: placementSchema, force: z.boolean().optional() }).strict(),
  /** phase two: a member of the new placement takes the task at the new epoch */
  z.object({ op: z.literal('install'), ...task, record: taskRecordSchema, result: storedResultSchema.optional(), mustDecide: finalValueSchema.optional() }).strict()
])

export type LeaseRequest = z.infer<typeof leaseRequestSchema>
export type LeaseOp = LeaseRequest['op']

/** Status enums on the wire; the client maps them to named errors. */
export const LEASE_STATUS = ['OK', 'DENIED', 'UNKNOWN_TASK', 'FINISHED', 'RETRY_LATER', 'STALE_TERM', 'CANCELED', 'VOTED', 'NOT_MEMBER', 'WRONG_EPOCH', 'SEALED', 'NOT_WAITING', 'ERROR'] as const
export type LeaseStatus = typeof LEASE_STATUS[number]

export const leaseResponseSchema = z.object({
  status: z.enum(LEASE_STATUS),
  term: z.number().int().nonnegative().optional(),
  expiresAt: z.number().optional(),
  /** on a grant: which attempt of the task this is, by the replica's own history */
  attempt: z.number().int().positive().optional(),
  /** on a grant: the generation the member's copy is at (a holder that kept no copy of a redriven task learns it here) */
  generation: z.number().int().nonnegative().optional(),
  holder: z.string().max(128).optional(),
  notBefore: z.number().optional(),
  state: z.string().max(32).optional(),
  reason: z.string().max(4096).optional(),
  /** this member's vote (new or earlier), signed */
  vote: shownVoteSchema.optional(),
  /** the certified final state, when the task is finished here */
  cert: certificateSchema.optional(),
  /** on WRONG_EPOCH: the placement this member serves now */
  placement: placementSchema.optional(),
  /** on seal: what this member held */
  record: taskRecordSchema.optional(),
  result: storedResultSchema.optional(),
  /** on a vote: this member also stored the certificate its vote completed with the shown ones */
  committed: z.boolean().optional(),
  /** on STALE_TERM to a vote: the claim's own lease lapsed here, and nothing else happened to the task here since (no later grant, release, suspension or redrive; no other attempt running or done) */
  lapsed: z.boolean().optional()
})

export type LeaseResponse = z.infer<typeof leaseResponseSchema>
