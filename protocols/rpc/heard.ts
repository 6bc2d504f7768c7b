/**
 * What each peer answered lately: the last answer read from it on any endpoint that shares this,
 * and since when a request to it has waited with nothing heard from it. A peer that is paused, or
 * cut off, answers nothing; one that is only slow still answers now and then. Callers use it to
 * tell the two apart. One entry per peer asked or heard from.
 */
export class PeersHeard {
  private readonly last = new Map<string, number>()
  private readonly unansweredSince = new Map<string, number>()

  /** an answer from `peer`, or a stream to it opened (its end took the protocol): it is there */
  mark (peer: string): void {
    this.last.set(peer, performance.now())
    this.unansweredSince.delete(peer)
  }

  /** a request written to `peer`: the first since its last answer starts its silence */
  asked (peer: string): void {
    if (!this.unansweredSince.has(peer)) this.unansweredSince.set(peer, performance.now())
  }

  /** the performance.now() time of the last answer read from `peer`, if any */
  lastHeard (peer: string): number | undefined {
    return this.last.get(peer)
  }

  /** how long a request to `peer` has waited with nothing heard from it since; 0 when none waits */
  silentFor (peer: string): number {
    const since = this.unansweredSince.get(peer)
    return since === undefined ? 0 : performance.now() - since
  }
}
