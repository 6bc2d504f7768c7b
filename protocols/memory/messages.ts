import { z } from 'zod'

export const MEMORY_PROTOCOL = '/agentmesh/memory/1.0.0'

/** Collection names go into store keys and URLs: plain characters only, no '/'. */
export const COLLECTION = /^[A-Za-z0-9._-]{1,64}$/
export const MAX_DIMENSIONS = 4_096
export const MAX_TEXT_BYTES = 65_536
/** records in one put request, and the largest k of a search */
export const MAX_MEMORY_BATCH = 256
export const MAX_K = 100
/** the most hits of a search checked for tombstones (4 × k): the best of those not dropped are its answer */
export const MAX_CANDIDATES = MAX_K * 4
/** a version (the writer's clock) this far ahead of a replica's clock is refused: it would pin the record */
export const MAX_VERSION_AHEAD_MS = 10 * 60_000
/** the largest memory request or answer: 256 records of 4,096 dims and 64 KiB of text, or 100 hits */
export const MAX_MEMORY_FRAME_BYTES = 32 * 1024 * 1024

const scalar = z.union([z.string().max(1_024), z.number(), z.boolean(), z.null()])
export const metadataSchema = z.record(z.string().max(128), scalar).refine(m => Object.keys(m).length <= 64, 'at most 64 metadata keys').meta({ maxProperties: 64 })
export type Metadata = z.infer<typeof metadataSchema>

export const vectorSchema = z.array(z.number().finite()).min(1).max(MAX_DIMENSIONS)

/**
 * One record as a replica keeps it. `version` orders writes of one id (the writer's clock, made
 * to rise): the highest wins on every replica, ties broken by writer, and a delete is a version
 * too (a tombstone), so a stale copy cannot bring a deleted record back.
 */
export const memoryEntrySchema = z.object({
  collection: z.string().regex(COLLECTION),
  id: z.string().min(1).max(256),
  text: z.string().max(MAX_TEXT_BYTES).optional(),
  vector: vectorSchema.optional(),
  metadata: metadataSchema.optional(),
  version: z.number().int().nonnegative(),
  writer: z.string().max(128),
  deleted: z.literal(true).optional()
}).strict()
export type MemoryEntry = z.infer<typeof memoryEntrySchema>

/** A metadata filter: every key must equal its value. */
export const filterSchema = z.record(z.string().max(128), scalar)

export const memoryRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('put'), entries: z.array(memoryEntrySchema).min(1).max(MAX_MEMORY_BATCH) }).strict(),
  z.object({ op: z.literal('search'), collection: z.string().regex(COLLECTION), vector: vectorSchema, k: z.number().int().min(1).max(MAX_K), filter: filterSchema.optional() }).strict(),
  // which of these ids this peer holds deleted (a search's hits, checked against the other members)
  z.object({ op: z.literal('tombstones'), collection: z.string().regex(COLLECTION), ids: z.array(z.string().min(1).max(256)).min(1).max(MAX_CANDIDATES) }).strict()
])
export type MemoryRequest = z.infer<typeof memoryRequestSchema>

export const hitSchema = z.object({
  id: z.string().max(256),
  score: z.number(),
  text: z.string().max(MAX_TEXT_BYTES).optional(),
  metadata: metadataSchema.optional(),
  version: z.number(),
  writer: z.string().max(128)
}).strict()
export type MemoryHit = z.infer<typeof hitSchema>

/**
 * ids stored, why others were not (a vector of another dimension than the collection's), and the
 * ids whose record a tombstone took away (absent from a peer before the field: it cannot tell)
 */
export const putAnswerSchema = z.object({ status: z.literal('OK'), stored: z.array(z.string().max(256)).max(MAX_MEMORY_BATCH), refused: z.array(z.object({ id: z.string().max(256), reason: z.string().max(1_024) })).max(MAX_MEMORY_BATCH).optional(), removed: z.array(z.string().max(256)).max(MAX_MEMORY_BATCH).optional() }).or(z.object({ status: z.literal('ERROR'), reason: z.string() }))
/** the hits, and the collection's dimensions on this peer when it holds any of it */
export const searchAnswerSchema = z.object({ status: z.literal('OK'), hits: z.array(hitSchema).max(MAX_K * 4), dimensions: z.number().int().positive().optional() }).or(z.object({ status: z.literal('ERROR'), reason: z.string() }))

/** the tombstones a peer holds among the ids asked (a peer from before the op answers ERROR: no news) */
export const tombstonesAnswerSchema = z.object({ status: z.literal('OK'), deleted: z.array(z.object({ id: z.string().max(256), version: z.number().int().nonnegative(), writer: z.string().max(128) }).strict()).max(MAX_CANDIDATES) }).or(z.object({ status: z.literal('ERROR'), reason: z.string() }))
export type Tombstone = Extract<z.infer<typeof tombstonesAnswerSchema>, { status: 'OK' }>['deleted'][number]

/** Newer of two versions of one record: higher version, then the higher writer id. */
export function newer (a: Pick<MemoryEntry, 'version' | 'writer'>, b: Pick<MemoryEntry, 'version' | 'writer'>): boolean {
  return a.version !== b.version ? a.version > b.version : a.writer > b.writer
}
