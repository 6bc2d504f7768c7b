/**
 * When each peer was last heard from: an answer read from it, or a stream to it opened (its end
 * took the protocol), on any endpoint that shares this. A peer that is paused, or cut off, answers
 * nothing; one that is only slow still answers now and then. Callers use it to tell the two apart.
 * One entry per peer ever heard from or suspected.
 */
export class PeersHeard {
  private readonly last = new Map<string, number>()
  private readonly suspected = new Map<string, number>()

  mark (peer: string): void {
    this.last.set(peer, performance.now())
  }

  /** the performance.now() time `peer` was last heard from, if ever */
  lastHeard (peer: string): number | undefined {
    return this.last.get(peer)
  }

  /** how long nothing has been heard from `peer`, counted from `since` (a request's sending) or its last answer, whichever is later */
  quietFor (peer: string, since: number): number {
    return performance.now() - Math.max(since, this.last.get(peer) ?? -Infinity)
  }

  /** a caller waited in vain for `peer`: taken as silent until it is heard from again */
  suspect (peer: string): void {
    this.suspected.set(peer, performance.now())
  }

  /** taken as silent by a caller, and not heard from since */
  isSuspected (peer: string): boolean {
    return this.suspectedAt(peer) !== undefined
  }

  /** the performance.now() time a caller last took `peer` as silent, if not heard from since */
  suspectedAt (peer: string): number | undefined {
    const at = this.suspected.get(peer)
    return at !== undefined && (this.last.get(peer) ?? -Infinity) < at ? at : undefined
  }
}
