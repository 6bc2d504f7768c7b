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
