/**
 * Items bound for one peer in one turn of the event loop go out as one request (in chunks of at
 * most `max`): a burst of submits or completions costs a request per peer, not one per item. A
 * lone item waits only for the end of the current turn.
 */
export class PeerBatches<T> {
  private readonly queues = new Map<string, T[]>()

  constructor (private readonly max: number, private readonly send: (peer: string, items: T[]) => Promise<void>) {}

  add (peer: string, item: T): void {
    let queue = this.queues.get(peer)
    if (queue === undefined) {
      queue = []
      this.queues.set(peer, queue)
      setImmediate(() => { this.flush(peer) })
    }
    queue.push(item)
  }

  private flush (peer: string): void {
    const queue = this.queues.get(peer) ?? []
    this.queues.delete(peer)
    for (let i = 0; i < queue.length; i += this.max) void this.send(peer, queue.slice(i, i + this.max))
  }
}
