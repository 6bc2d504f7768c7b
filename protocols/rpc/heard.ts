/**
 * When each peer was last heard from: an answer read from it on any endpoint that shares this. A
 * peer that is paused, or cut off, answers nothing; one that is only slow still answers something
 * now and then. Callers use it to tell the two apart. One entry per peer ever heard from.
 */
export class PeersHeard {
  private readonly at = new Map<string, number>()

  mark (peer: string): void {
    this.at.set(peer, performance.now())
  }

  /** the performance.now() time of the last answer read from `peer`, if any */
  lastHeard (peer: string): number | undefined {
    return this.at.get(peer)
  }
}
