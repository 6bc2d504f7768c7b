export class DeadlineExceededError extends Error {
  static override name = 'DeadlineExceededError'
  constructor (message: string) { super(message); this.name = 'DeadlineExceededError' }
}

export interface WaitOptions {
  /** @default 10_000 */
  timeoutMs?: number
  /** @default 50 */
  intervalMs?: number
  /** named in the error when the deadline passes (a function is asked then, so it can show the state) */
  what?: string | (() => string)
}

/**
 * Polls until `check` returns a value other than false/undefined/null, or the deadline passes.
 * Tests and the simulator use this instead of sleeping and hoping.
 */
export async function waitFor<T> (check: () => T | false | undefined | null | Promise<T | false | undefined | null>, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  let lastError: unknown
  while (true) {
    try {
      const value = await check()
      if (value !== false && value !== undefined && value !== null) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : ''
      const what = typeof options.what === 'function' ? options.what() : options.what
      throw new DeadlineExceededError(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${what ?? 'condition'}${cause}`)
    }
    await new Promise(resolve => setTimeout(resolve, options.intervalMs ?? 50))
  }
}
