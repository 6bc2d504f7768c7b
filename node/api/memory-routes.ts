import { z } from 'zod'
import { COLLECTION, MAX_K, MAX_MEMORY_BATCH, MAX_TEXT_BYTES, filterSchema, metadataSchema, vectorSchema } from '../../protocols/memory/index.js'
import { badRequest, httpErrorBy, parseOr400 } from './http.js'
import type { ErrorTable } from './http.js'
import type { Route } from './http.js'
import type { MemoryLayer } from '../memory/memory-layer.js'

const recordBody = z.object({
  id: z.string().min(1).max(256),
  text: z.string().max(MAX_TEXT_BYTES).meta({ description: `at most ${MAX_TEXT_BYTES} bytes of UTF-8 (a character may take up to 4)` }).optional(),
  vector: vectorSchema.optional(),
  metadata: metadataSchema.optional()
}).strict().refine(r => r.text !== undefined || r.vector !== undefined, 'a record needs a vector or a text to embed')

const batchBody = z.object({ records: z.array(recordBody).min(1).max(MAX_MEMORY_BATCH) }).strict()
/** One record, or `{records: [...]}` (for the OpenAPI document; a body is checked against the one its shape names) */
const putBody = z.union([recordBody, batchBody])

const searchBody = z.object({
  text: z.string().min(1).max(MAX_TEXT_BYTES).optional(),
  vector: vectorSchema.optional(),
  k: z.number().int().min(1).max(MAX_K).optional(),
  filter: filterSchema.optional()
}).strict().refine(q => (q.text === undefined) !== (q.vector === undefined), 'give one of text or vector (not neither, not both)')

const ERROR_STATUS: ErrorTable = {
  InvalidMemoryError: [400, 'BAD_REQUEST', 'invalid-body'],
  EmbeddingsUnavailableError: [503, 'EMBEDDINGS_UNAVAILABLE'],
  QuorumUnavailableError: [503, 'QUORUM_UNAVAILABLE'],
  // a node without an embeddings model hands texts to a peer as tasks, which an overloaded node refuses
  OverloadedError: [429, 'OVERLOADED']
}

/** zod drops a "__proto__" key without a word: a record would be stored without it, a filter match more. */
function refuseProtoKey (value: object | undefined, what: string): void {
  if (value !== undefined && Object.hasOwn(value, '__proto__')) throw badRequest('invalid-body', `${what}: a key may not be "__proto__"`)
}

function collectionParam (name: string | undefined): string {
  if (name === undefined || !COLLECTION.test(name)) throw badRequest('invalid-id', 'a collection name is 1-64 letters, digits, ".", "_" or "-"')
  return name
}

/** /v1/memory: records written to a majority of their placement, searched across the mesh. */
export function memoryRoutes (memory: MemoryLayer, retryAfterMs: () => number): Route[] {
  // a 503 for want of a majority says when to come back (Retry-After); one for want of an
  // embeddings model does not pass by waiting, and says nothing
  const httpError = httpErrorBy(ERROR_STATUS, retryAfterMs)
  return [
    {
      method: 'POST',
      path: '/v1/memory/:collection',
      summary: 'store a record {id, text?, vector?, metadata?} or {records: [...]}: 201 once each is on a majority of its placement',
      status: 201,
      schema: { body: putBody },
      handle: async ctx => {
        const collection = collectionParam(ctx.params.collection)
        const raw = await ctx.body()
        // checked against the one schema its shape names: against the union, every mistake read "Invalid input"
        const batch = typeof raw === 'object' && raw !== null && 'records' in raw
        const records = batch ? parseOr400(batchBody, raw).records : [parseOr400(recordBody, raw)]
        // zod drops such a key without a word, so the body itself is read: the record was stored without it
        const given = (batch ? (raw as { records: unknown[] }).records : [raw]) as Array<{ metadata?: object }>
        for (const r of given) refuseProtoKey(r.metadata, 'metadata')
        const stored = await memory.put(collection, records).catch(httpError)
        return { status: 201, body: { collection, records: stored } }
      }
    },
    {
      method: 'POST',
      path: '/v1/memory/:collection/search',
      summary: 'the k nearest records to a text or a vector, with a metadata filter; says how much of the mesh answered',
      schema: { body: searchBody },
      handle: async ctx => {
        const collection = collectionParam(ctx.params.collection)
        const raw = await ctx.body()
        const q = parseOr400(searchBody, raw)
        refuseProtoKey((raw as { filter?: object }).filter, 'filter')
        return { body: { collection, ...await memory.search(collection, q).catch(httpError) } }
      }
    },
    {
      method: 'DELETE',
      path: '/v1/memory/:collection/:id',
      summary: 'delete a record (a tombstone on a majority of its placement); `deleted` says whether it took a record away',
      handle: async ctx => {
        const collection = collectionParam(ctx.params.collection)
        const id = ctx.params.id ?? ''
        if (id === '' || id.length > 256) throw badRequest('invalid-id', 'a record id is 1-256 characters')
        // a record that was not there is no error (a retried delete meets its own tombstone): it says so
        const deleted = await memory.delete(collection, id).catch(httpError)
        return { body: { collection, id, deleted } }
      }
    }
  ]
}
