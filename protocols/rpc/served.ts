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
