import { createHash } from 'node:crypto'

export interface BackoffOptions {
  baseMs: number
  capMs: number
}

/**
 * Delay before retry number `failures` (1-based): exponential, capped, with "equal jitter" in
 * [d/2, d). The jitter is a hash of the task id and the count, not Math.random, so every replica
 * of a task computes the same delay and they agree on when the retry may start.
 */
export function retryDelay (id: string, failures: number, o: BackoffOptions): number {
  const d = Math.min(o.capMs, o.baseMs * 2 ** Math.max(0, failures - 1))
  const h = createHash('sha256').update(`${id}:${failures}`).digest().readUInt32BE(0) / 0x1_0000_0000
  return Math.round(d / 2 + h * d / 2)
}
