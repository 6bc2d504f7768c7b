import { AgentIgnoredAbortError } from './errors.js'

/**
 * Aborts `controller` when `source` aborts (with its reason) or once `timeoutMs` passes (with a
 * TimeoutError, as AbortSignal.timeout gives); the returned function undoes both. A run had
 * AbortSignal.any over AbortSignal.timeout: that kept a timer and a signal alive for the whole
 * timeout (a minute by default) after every task, and cost 1.3% of a loaded node's CPU.
 */
export function abortWith (controller: AbortController, source: AbortSignal, timeoutMs: number): () => void {
  const follow = (): void => { controller.abort(source.reason) }
  if (source.aborted) follow()
  else source.addEventListener('abort', follow, { once: true })
  const timer = setTimeout(() => { controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')) }, timeoutMs)
  // as AbortSignal.timeout's: a run's timeout alone does not keep the process alive
  timer.unref()
  return () => {
    clearTimeout(timer)
    source.removeEventListener('abort', follow)
  }
}

/**
 * The agent's run, or, once `signal` has aborted and the run has not settled within `graceMs`, an
 * AgentIgnoredAbortError. The run's own promise is left to settle unheeded (a late rejection of it
 * is caught here, never unhandled).
 */
export async function withAbortGrace<T> (run: Promise<T>, signal: AbortSignal, graceMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  let giveUp!: (err: Error) => void
  const ignored = new Promise<never>((_resolve, reject) => { giveUp = reject })
  const onAbort = (): void => {
    const why = String((signal.reason as Error | undefined)?.message ?? signal.reason)
    timer = setTimeout(() => { giveUp(new AgentIgnoredAbortError(`the agent was still running ${graceMs} ms after its run was aborted (${why}): the run was ended without it`)) }, graceMs)
    // as abortWith's: a stopped node's process is not kept alive for it
    timer.unref()
  }
  if (signal.aborted) onAbort()
  else signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await Promise.race([run, ignored])
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
    run.catch(() => {})
  }
}
