import { z } from 'zod'
import { taskIdSchema } from '../task/schema.js'

const claim = { id: taskIdSchema, claimId: z.string().min(1).max(64) }

export const leaseRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('acquire'), ...claim, durationMs: z.number().int().min(1).max(3_600_000) }).strict(),
  z.object({ op: z.literal('renew'), ...claim, term: z.number().int().positive(), durationMs: z.number().int().min(1).max(3_600_000) }).strict(),
  z.object({ op: z.literal('release'), ...claim, term: z.number().int().positive(), ran: z.boolean() }).strict(),
  /** phase one of a completion: the replica keeps the result and holds the lease for the commit */
  z.object({ op: z.literal('complete'), ...claim, term: z.number().int().positive(), result: z.json(), size: z.number().int().nonnegative(), durationMs: z.number().int().min(1).max(3_600_000) }).strict(),
  /** phase two, sent once a majority kept the result: the task is completed */
  z.object({ op: z.literal('commit'), ...claim, term: z.number().int().positive() }).strict(),
  z.object({ op: z.literal('fail'), ...claim, term: z.number().int().positive(), error: z.string().max(4096), unrecoverable: z.boolean() }).strict(),
  z.object({ op: z.literal('cancel'), id: taskIdSchema }).strict(),
  z.object({ op: z.literal('redrive'), id: taskIdSchema }).strict(),
  z.object({ op: z.literal('drop'), id: taskIdSchema }).strict()
])

export type LeaseRequest = z.infer<typeof leaseRequestSchema>

/** Status enums on the wire; the client maps them to named errors. */
export const LEASE_STATUS = ['OK', 'DENIED', 'UNKNOWN_TASK', 'FINISHED', 'RETRY_LATER', 'STALE_TERM', 'CANCELED', 'ERROR'] as const
export type LeaseStatus = typeof LEASE_STATUS[number]

export interface LeaseResponse {
  status: LeaseStatus
  term?: number
  expiresAt?: number
  /** on a grant: which attempt of the task this is, by the replica's own history */
  attempt?: number
  holder?: string
  notBefore?: number
  state?: string
  dead?: boolean
  reason?: string
}

export const leaseResponseSchema = z.object({
  status: z.enum(LEASE_STATUS),
  term: z.number().optional(),
  expiresAt: z.number().optional(),
  attempt: z.number().int().positive().optional(),
  holder: z.string().optional(),
  notBefore: z.number().optional(),
  state: z.string().optional(),
  dead: z.boolean().optional(),
  reason: z.string().optional()
})
