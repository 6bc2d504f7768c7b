/** The least wait before a node claims a task again after `failures` failed claims in a row; the wait is up to twice this. */
export function claimRetryFloorMs (failures: number, baseMs: number, leaseMs: number): number {
  return Math.min(leaseMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 30))
}

export interface ClaimRetry {
  /** failed claims of the task in a row on this node */
  failures: number
  /** when this node may claim it again (ms since the epoch) */
  at: number
}

/**
 * Tasks whose last claims here failed, and when this node may claim each again: a random time
 * that doubles with each failure in a row. Claimants that split the grants would otherwise retry
 * in step (every pull) and split them again: the partition test saw about 90 such claims of one
 * task and no winner.
 */
export class ClaimRetries {
  private readonly retries = new Map<string, ClaimRetry>()

  constructor (private readonly options: { claimRetryBaseMs: number, leaseMs: number }) {}

  get (id: string): ClaimRetry | undefined {
    return this.retries.get(id)
  }

  /** Whether a claim of `id` must wait still. */
  waiting (id: string, now = Date.now()): boolean {
    return (this.retries.get(id)?.at ?? 0) > now
  }

  /** A failed claim: the next one waits longer. */
  failed (id: string): void {
    const failures = (this.retries.get(id)?.failures ?? 0) + 1
    const at = Date.now() + claimRetryFloorMs(failures, this.options.claimRetryBaseMs, this.options.leaseMs) * (1 + Math.random())
    this.retries.set(id, { failures, at })
  }

  delete (id: string): void {
    this.retries.delete(id)
  }

  /** Forgets waits a lease's time past their end: a task claimed again much later starts from one failure. */
  forgetPast (now = Date.now()): void {
    for (const [id, retry] of this.retries) if (retry.at + this.options.leaseMs < now) this.retries.delete(id)
  }

  clear (): void {
    this.retries.clear()
  }
}
