/**
 * Runs `fn` on each item, at most `limit` at a time, and resolves once all are done (rejects with
 * the first failure). For rounds of work per task where each may wait on a silent peer: one at a
 * time, a paused member held a round up for its RPC timeout per task.
 */
export async function eachLimited<T> (items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const next = items[Symbol.iterator]()
  const worker = async (): Promise<void> => {
    for (let item = next.next(); item.done !== true; item = next.next()) await fn(item.value)
  }
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker))
}
