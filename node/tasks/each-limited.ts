/**
 * Runs `fn` on each item, at most `limit` at a time, and resolves once all are done. After a
 * failure no item is started; the ones running finish, then the first failure is thrown (the
 * caller's stop then waits for all of them). For rounds of work per task where each may wait on a
 * silent peer: one at a time, a paused member held a round up for its RPC timeout per task.
 */
export async function eachLimited<T> (items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const next = items[Symbol.iterator]()
  let failure: { err: unknown } | undefined
  const worker = async (): Promise<void> => {
    for (let item = next.next(); item.done !== true && failure === undefined; item = next.next()) {
      try {
        await fn(item.value)
      } catch (err) {
        failure ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker))
  if (failure !== undefined) throw failure.err
}
