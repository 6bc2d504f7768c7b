import { z } from 'zod'
import { placementSchema, taskRecordSchema } from '../task/record.js'
import { capabilitySchema, taskIdSchema, taskSchema } from '../task/schema.js'
import { storedResultSchema } from '../task/store.js'

export const RECORDS_PROTOCOL = '/agentmesh/records/1.0.0'

/** The most records one `put-many` carries. */
export const MAX_PUT_MANY_ITEMS = 1_000

export const recordsRequestSchema = z.discriminatedUnion('op', [
  /** merge a record (and its result) into the replica's copy; OK once it is on disk */
  z.object({ op: z.literal('put'), record: taskRecordSchema, result: storedResultSchema.optional() }).strict(),
  z.object({ op: z.literal('get'), id: taskIdSchema }).strict(),
  /** tasks the replica would grant a lease on now: the pull path */
  z.object({ op: z.literal('pending'), capabilities: z.array(capabilitySchema).max(256), limit: z.number().int().min(1).max(1000), minAgeMs: z.number().int().min(0).optional() }).strict(),
  /** anti-entropy, step one: bucket hashes over the records both peers should hold; answers the buckets that differ */
  z.object({ op: z.literal('digest'), buckets: z.record(z.string().regex(/^[0-9a-f]{1,4}$/), z.string().max(64)) }).strict(),
  /** step two: id and hash of each record in the differing buckets; answers the ids the receiver needs */
  z.object({ op: z.literal('ids'), entries: z.array(z.tuple([taskIdSchema, z.string().max(64)])).max(20_000) }).strict(),
  /** step three of anti-entropy, and a bulk submit: the records themselves (a receiver keeps only those it is a member for) */
  z.object({ op: z.literal('put-many'), items: z.array(z.object({ record: taskRecordSchema, result: storedResultSchema.optional() }).strict()).max(MAX_PUT_MANY_ITEMS) }).strict()
])

export type RecordsRequest = z.infer<typeof recordsRequestSchema>

/**
 * The answer to `put-many`: how many records were stored and which. `storedIds` is newer than
 * `stored`; a peer that answers without it is read as having stored all or, if not all, none known.
 */
export const putManyAnswerSchema = z.object({ status: z.literal('OK'), stored: z.number().int().min(0), storedIds: z.array(taskIdSchema).max(MAX_PUT_MANY_ITEMS).optional() })

export type PutManyAnswer = z.infer<typeof putManyAnswerSchema>

/** One entry of a `pending` answer: a task and the placement to ask for its lease. */
export const claimableSchema = z.object({ task: taskSchema, placement: placementSchema }).strict()
