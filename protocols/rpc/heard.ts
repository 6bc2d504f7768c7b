/**
 * When each peer was last heard from: a frame read from it on any endpoint that shares this, an
 * answer or a request of its own. A peer that is paused, or cut off, sends nothing; one that is
 * only slow still answers something now and then. Callers use it to tell the two apart.
 * One entry per peer ever heard from, a few dozen bytes each.
 */
export class PeersHeard {
  private readonly at = new Map<string, number>()

  mark (peer: string): void {
    this.at.set(peer, performance.now())
  }

  /** true when a frame from `peer` was read at or after `since` (a performance.now() time) */
  heardSince (peer: string, since: number): boolean {
    const at = this.at.get(peer)
    return at !== undefined && at >= since
  }
}
