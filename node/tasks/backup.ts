/**
 * Work the first live member of a placement does for a task (re-announcing it, deciding it, moving
 * it), taken up by the other members once it has waited `afterMs()`. A first member that is live
 * but does not act on the task (its copy unreadable on disk, say) otherwise held it up for ever:
 * the others only ever deferred to it. Two members doing it is safe, only more traffic: every one
 * of these is a majority operation.
 */
export class Backup {
  private readonly since = new Map<string, number>()
  private seen = new Set<string>()

  constructor (private readonly afterMs: () => number) {}

  /** Whether a member that is not first should act on `id` now: it has waited since it first asked. */
  due (id: string, now: number): boolean {
    this.seen.add(id)
    const since = this.since.get(id) ?? now
    this.since.set(id, since)
    return now - since >= this.afterMs()
  }

  /** Ends a round: tasks not asked about in it (done, moved on, or this member now first) wait again from scratch. */
  endRound (): void {
    for (const id of this.since.keys()) if (!this.seen.has(id)) this.since.delete(id)
    this.seen = new Set()
  }
}
