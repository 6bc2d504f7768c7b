import { z } from 'zod'
import { jsonValue } from '../task/json-value.js'
import { placementSchema, taskRecordSchema } from '../task/record.js'
import { MAX_TIMER_MS, capabilitySchema, taskIdSchema, taskSchema } from '../task/schema.js'
import { storedResultSchema } from '../task/store.js'
import { taskNoticeSchema } from '../gossip/messages.js'

export const RECORDS_PROTOCOL = '/agentmesh/records/1.0.0'

/** The most records one `put-many` carries. */
export const MAX_PUT_MANY_ITEMS = 1_000

/** The most entries one anti-entropy `ids` request carries. */
export const MAX_IDS_ENTRIES = 20_000

/** The most tasks one `offer`, and notices one `notify`, carries. */
export const MAX_OFFER_ITEMS = 256

/** One entry of a `pending` answer: a task and the placement to ask for its lease. */
export const claimableSchema = z.object({ task: taskSchema, placement: placementSchema }).strict()

/** The most events one `progress` request carries. */
export const MAX_PROGRESS_ITEMS = 256

/** The largest progress event, as JSON; a sender drops larger ones. */
export const MAX_PROGRESS_EVENT_BYTES = 16 * 1024

/**
 * One progress event of a running task, from the peer that runs it to the task's submitter. `seq`
 * counts from 0 within one claim, so the receiver sees duplicates and gaps; `generation`, then
 * `attempt`, orders claims (a redriven task numbers its attempts from 1 again).
 */
export const progressItemSchema = z.object({
  id: taskIdSchema,
  claimId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'claim id: 1-64 letters, digits, _ or -'),
  attempt: z.number().int().min(1).max(10_000),
  /** absent: 0 */
  generation: z.number().int().nonnegative().max(1_000_000).optional(),
  seq: z.number().int().nonnegative(),
  at: z.number(),
  event: jsonValue()
}).strict()

export type ProgressItem = z.infer<typeof progressItemSchema>

/** A task offered to the peer that should run it; `queue`: the last peer asked keeps it if busy. */
export const offerItemSchema = claimableSchema.extend({ queue: z.boolean().optional() }).strict()

export type OfferItem = z.infer<typeof offerItemSchema>

export const recordsRequestSchema = z.discriminatedUnion('op', [
  /** merge a record (and its result) into the replica's copy; OK once it is on disk */
  z.object({ op: z.literal('put'), record: taskRecordSchema, result: storedResultSchema.optional() }).strict(),
  /** `watch`: the asker waits on the task; the receiver tells it (a `notify`) once it stores the final state */
  z.object({ op: z.literal('get'), id: taskIdSchema, watch: z.boolean().optional() }).strict(),
  /** tasks the replica would grant a lease on now: the pull path */
  z.object({ op: z.literal('pending'), capabilities: z.array(capabilitySchema).max(256), limit: z.number().int().min(1).max(1000), minAgeMs: z.number().int().min(0).optional() }).strict(),
  /**
   * anti-entropy, step one: bucket hashes over the records both peers should hold; answers the
   * buckets that differ. `hashing`: the sender's version of the record hash (none: the first);
   * a receiver that hashes otherwise answers none, as their hashes could never agree
   */
  z.object({ op: z.literal('digest'), buckets: z.record(z.string().regex(/^[0-9a-f]{1,4}$/), z.string().max(64)), hashing: z.number().int().optional() }).strict(),
  /** step two: id and hash of each record in the differing buckets; answers the ids the receiver needs */
  z.object({ op: z.literal('ids'), entries: z.array(z.tuple([taskIdSchema, z.string().max(64)])).max(MAX_IDS_ENTRIES) }).strict(),
  /** step three of anti-entropy, and a bulk submit: the records themselves (a receiver keeps only those it is a member for) */
  z.object({ op: z.literal('put-many'), items: z.array(z.object({ record: taskRecordSchema, result: storedResultSchema.optional() }).strict()).max(MAX_PUT_MANY_ITEMS) }).strict(),
  /**
   * a new task its submitter hands to the receiver, a member of its placement with a free slot:
   * the receiver claims it with the store (its acquires carry the record) and runs it, and answers
   * taken once a majority granted; else it declines at once and the submitter stores it itself.
   * `tell`: the submitter reads an outcome in an answer sent within this many ms of the request's
   * arrival (well inside its wait for the answer); a later one's is sent by `notify` as well. A peer
   * from before the field refuses it
   */
  z.object({ op: z.literal('handoff'), record: taskRecordSchema, tell: z.number().int().min(1).max(MAX_TIMER_MS).optional() }).strict(),
  /** new tasks for the receiver to run: answers the ids it took (claiming now, or queued) */
  z.object({ op: z.literal('offer'), items: z.array(offerItemSchema).max(MAX_OFFER_ITEMS) }).strict(),
  /** notices sent straight to the peer that waits on the tasks, not flooded: hints, like gossiped ones */
  z.object({ op: z.literal('notify'), notices: z.array(taskNoticeSchema).max(MAX_OFFER_ITEMS) }).strict(),
  /** progress of tasks the receiver submitted, straight from the peer running them: hints, in order per claim */
  z.object({ op: z.literal('progress'), events: z.array(progressItemSchema).max(MAX_PROGRESS_ITEMS) }).strict(),
  /** ids of the subtasks of a task the receiver holds: asked of the peers that ran it (they submitted them), for a trace */
  z.object({ op: z.literal('children'), id: taskIdSchema }).strict(),
  /** the progress the receiver (a task's submitter) holds for a task: how another node's event stream shows it */
  z.object({ op: z.literal('progress-recent'), id: taskIdSchema, since: z.object({ claimId: z.string().min(1).max(64), seq: z.number().int().nonnegative() }).strict().optional() }).strict()
])

/** A `progress-recent` answer stays well under the frame limit; `more` says the rest waits for the next ask. */
export const MAX_PROGRESS_ANSWER_BYTES = 512 * 1024

/** One answered progress event: an item and the peer that ran the attempt. */
export const progressUpdateSchema = progressItemSchema.extend({ peer: z.string().max(128) })

/** The most subtask ids one `children` answer lists. */
export const MAX_CHILDREN = 1_000

export type RecordsRequest = z.infer<typeof recordsRequestSchema>

/**
 * The answer to `put-many`: how many records were stored and which. `storedIds` is newer than
 * `stored`; a peer that answers without it is read as having stored all or, if not all, none known.
 */
export const putManyAnswerSchema = z.object({ status: z.literal('OK'), stored: z.number().int().min(0), storedIds: z.array(taskIdSchema).max(MAX_PUT_MANY_ITEMS).optional() })

export type PutManyAnswer = z.infer<typeof putManyAnswerSchema>

/**
 * The answer to `handoff`: whether the receiver holds the lease (and a majority the record);
 * `busy`: it declined for want of a free slot (or lagging), which its last presence did not say yet;
 * `notice`: to a submitter that asked (`tell`), the task's certified outcome when its grants already
 * made it (a pure agent's run before the claim), instead of a `notify` request after it.
 */
export const handoffAnswerSchema = z.object({ status: z.literal('OK'), taken: z.boolean(), busy: z.boolean().optional(), notice: z.unknown().optional() })

/** What the receiver of a handoff did with it, and the outcome it tells with its answer. */
export interface HandoffOutcome {
  outcome: 'taken' | 'busy' | 'declined'
  notice?: z.infer<typeof taskNoticeSchema>
}

/** The answer to `offer`: the ids the receiver took; the others are for the next peer. */
export const offerAnswerSchema = z.object({ status: z.literal('OK'), taken: z.array(taskIdSchema).max(MAX_OFFER_ITEMS) })
