import { bucketHashes, bucketOf } from '../../protocols/replica/digest.js'
import { Repeater } from './repeater.js'
import type { TaskComponents } from './components.js'
import type { Logger, PeerId } from '@libp2p/interface'

export interface AntiEntropyStats {
  rounds: number
  messages: number
  /** JSON bytes of the requests sent */
  bytes: number
  recordsPushed: number
  handedOff: number
}

/**
 * Anti-entropy: every interval each node compares, with each peer it shares replica sets with,
 * the records both should hold: first 16 bucket hashes, then ids and hashes of the differing
 * buckets, then the records the peer lacks. It also hands each record it holds but is no longer a
 * replica of (replica sets move as peers come and go) to the current replica set, once per change.
 * A steady mesh exchanges one small digest per pair of peers per interval.
 */
export class AntiEntropy {
  readonly stats: AntiEntropyStats = { rounds: 0, messages: 0, bytes: 0, recordsPushed: 0, handedOff: 0 }
  private readonly c: TaskComponents
  private readonly log: Logger
  /** what each non-replica record was last handed off as: its hash and the replica set it went to */
  private readonly handed = new Map<string, string>()
  private readonly loop: Repeater

  constructor (components: TaskComponents) {
    this.c = components
    this.log = components.logger('agentmesh:anti-entropy')
    this.loop = new Repeater('anti-entropy round', () => this.c.options.antiEntropyIntervalMs, async () => this.runRound(), this.log)
  }

  private get running (): boolean {
    return this.loop.isRunning
  }

  start (): void {
    this.loop.start()
  }

  async stop (): Promise<void> {
    await this.loop.stop()
  }

  /** Ids this node holds that `peer` should hold too: both are in the record's replica set. */
  sharedWith (peer: string): string[] {
    const me = this.c.peerId.toString()
    return [...this.c.replica.hashes.keys()].filter(id => this.c.replicaSets.includes(id, peer) && this.c.replicaSets.includes(id, me))
  }

  async runRound (): Promise<void> {
    this.stats.rounds++
    const me = this.c.peerId.toString()
    const byPeer = new Map<string, string[]>()
    const handoff: string[] = []
    for (const id of this.c.replica.hashes.keys()) {
      const set = this.c.replicaSets.for(id).map(p => p.toString())
      if (!set.includes(me)) {
        handoff.push(id)
        continue
      }
      for (const peer of set) if (peer !== me) byPeer.set(peer, [...(byPeer.get(peer) ?? []), id])
    }
    for (const [peer, ids] of byPeer) {
      if (!this.running) return
      await this.syncWith(this.c.replicaSets.peerId(peer), ids).catch(err => { this.log('sync with %s failed: %s', peer, err.message) })
    }
    await this.handOff(handoff)
    for (const id of this.handed.keys()) if (!this.c.replica.hashes.has(id)) this.handed.delete(id)
  }

  private async syncWith (peer: PeerId, ids: string[]): Promise<void> {
    const hashOf = (id: string): string | undefined => this.c.replica.hashes.get(id)
    const digest = await this.send(peer, { op: 'digest', buckets: bucketHashes(ids, hashOf) })
    const differ = new Set<string>(digest?.differ ?? [])
    if (differ.size === 0) return
    const entries = ids.filter(id => differ.has(bucketOf(id))).map(id => [id, hashOf(id) ?? ''] as [string, string])
    if (entries.length === 0) return
    const { need } = await this.send(peer, { op: 'ids', entries })
    await this.push(peer, need ?? [])
  }

  /** Records this node holds for others: pushed to the current replica set whenever the record or the set changed. */
  private async handOff (ids: string[]): Promise<void> {
    for (const id of ids) {
      if (!this.running) return
      const set = this.c.replicaSets.for(id)
      const key = `${this.c.replica.hashes.get(id) ?? ''}@${set.map(p => p.toString()).join(',')}`
      if (this.handed.get(id) === key) continue
      const results = await Promise.allSettled(set.map(async peer => this.push(peer, [id])))
      if (results.every(r => r.status === 'fulfilled')) {
        this.handed.set(id, key)
        this.stats.handedOff++
      }
    }
  }

  private async push (peer: PeerId, ids: string[]): Promise<void> {
    let batch: unknown[] = []
    let size = 0
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      await this.send(peer, { op: 'put-many', items: batch })
      this.stats.recordsPushed += batch.length
      batch = []
      size = 0
    }
    for (const id of ids) {
      const { record, result } = await this.c.replica.get(id)
      if (record === undefined) continue
      const item = result === undefined ? { record } : { record, result }
      const bytes = JSON.stringify(item).length
      // batches of about 256 KiB: one request, not one per record, but no giant frames
      if (size + bytes > 256 * 1024) await flush()
      batch.push(item)
      size += bytes
    }
    await flush()
  }

  private async send (peer: PeerId, req: any): Promise<any> {
    this.stats.messages++
    this.stats.bytes += JSON.stringify(req).length
    const answer = await this.c.records(peer, req)
    if (answer?.status !== 'OK') throw new Error(`records ${String(req.op)}: ${String(answer?.reason ?? answer?.status)}`)
    return answer
  }
}
