/**
 * Work the first live member of a placement does for a task (deciding it when it is out of
 * attempts or past its deadline, re-announcing it), taken up by the other members once the task has
 * waited for it: the member of live rank k (1 for the second) after k times `afterMs()`. A first
 * member that is live but does not act on the task (its copy unreadable on disk) otherwise held it
 * up for ever: the others only deferred to it. Both are majority operations, so a second member
 * doing one is only more traffic, and only for a task that has waited that long. Moves are not
 * backed up: two members starting different moves of one epoch can seal one member each, and
 * neither move then gets a majority.
 */
export class Backup {
  private readonly since = new Map<string, number>()
  private seen = new Set<string>()
  constructor (private readonly afterMs: () => number) {}

  /** Whether this member, of live rank `rank` among the task's members (0: first), should act on `id` now (`afterMs`: this task's wait a rank). */
  due (id: string, rank: number, now: number, afterMs = this.afterMs()): boolean {
    if (rank < 0) return false
    if (rank === 0) return true
    this.seen.add(id)
    const since = this.since.get(id) ?? now
    this.since.set(id, since)
    return now - since >= rank * afterMs
  }

  /** Ends a round: tasks not asked about in it (done, moved on, or this member now first) wait again from scratch. */
  endRound (): void {
    for (const id of this.since.keys()) if (!this.seen.has(id)) this.since.delete(id)
    this.seen = new Set()
  }
}
