import { NOT_JSON, copyJson } from '../task/json-value.js'
import { fastParse } from './fast-check.js'
import type { ZodType } from 'zod'

/** Requests a protocol's handler served, by protocol and op (`lease.acquire`, `records.put`). */
export interface ServedStats {
  /** kept only when present: a node's requests to itself are not counted */
  served?: Record<string, number>
}

/** Counts one served request by its op, when `stats` keeps them. */
export function countServed (stats: ServedStats, protocol: string, op: string): void {
  if (stats.served === undefined) return
  const key = `${protocol}.${op}`
  stats.served[key] = (stats.served[key] ?? 0) + 1
}

/** The answer of a peer whose schema refused the request: one from before a field or an op was added. */
export function isBadRequest (answer: unknown): boolean {
  const a = answer as { status?: unknown, reason?: unknown } | undefined
  return a?.status === 'ERROR' && typeof a.reason === 'string' && a.reason.startsWith('bad request')
}

/** Levels a request nests above the values it carries: they are held to MAX_JSON_DEPTH by the schema. */
const REQUEST_NESTING = 8

export type ParsedRequest<T> = { ok: true, data: T } | { ok: false, reason: string }

/**
 * A request checked against its schema. `own`: this node's own request, whose values (an agent's
 * result, a journal step, a subtask's input) are the agent's own objects: copied as the wire would
 * carry them, checked as JSON in the same walk, then held to the schema like a peer's (this member
 * must refuse what the others refuse). A structured clone after the parse cost twice the copy.
 */
export function parseRequest<T> (schema: ZodType<T>, body: unknown, own: boolean): ParsedRequest<T> {
  const value = own ? copyJson(body, -REQUEST_NESTING) : body
  if (value === NOT_JSON) return { ok: false, reason: 'not a JSON value (strings, finite numbers, booleans, null, arrays and plain objects)' }
  // a request already in the schema's form is taken as it is; anything else gets zod's parse and its message
  const parsed = fastParse(schema, value)
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, reason: parsed.error.issues[0]?.message ?? 'invalid' }
}
