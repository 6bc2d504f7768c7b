import { recordsGetAnswer } from './find-task.js'
import { RECORD_HASHING, bucketDigits, bucketHashes, bucketOf } from '../../protocols/replica/digest.js'
import { MAX_IDS_ENTRIES } from '../../protocols/records/messages.js'
import { byteLength } from '../../protocols/task/index.js'
import { rpcFrameBytes } from './options.js'
import { Repeater } from './repeater.js'
import type { TaskComponents } from './components.js'
import type { TaskLayerOptions } from './options.js'
import type { Logger, PeerId } from '@libp2p/interface'

/** Entries of one `ids` request: about 90 bytes each, so at most half the frame a peer with this node's limits reads. */
function idsPerRequest (options: TaskLayerOptions): number {
  return Math.min(MAX_IDS_ENTRIES, Math.floor(rpcFrameBytes(options) / 2 / 100))
}

/** What a record changed within antiEntropyMinAgeMs hashes as in a comparison: present, content not compared. */
export const IN_FLUX = 'in-flux'

export interface AntiEntropyStats {
  rounds: number
  messages: number
  /** JSON bytes of the requests sent */
  bytes: number
  /** ids (with their hashes) sent to be compared one by one: those of the buckets that differed */
  idsSent: number
  recordsPushed: number
  /** digests (this node's bucket hashes for one peer) computed, and those answered from the cache: nothing changed since */
  digestsComputed: number
  digestsReused: number
  /** completed copies held here without their result that a round fetched the result for */
  resultsRepaired: number
}

/** This node's bucket hashes for one peer at one bucket size, as computed at an index version. */
interface CachedDigest { version: number, buckets: Record<string, string> }

const digestKey = (peer: string, digits: number): string => `${digits}:${peer}`

/**
 * Anti-entropy within placements: every interval each node compares, with each peer it shares
 * placements with, the records both are members for: first bucket hashes (16, more once they
 * share more than 1,024 records), then ids and hashes of the differing buckets, then the records
 * the peer lacks. It repairs members that missed writes; it never moves a task to other peers
 * (only an epoch change does). Final states travel only with their certificates, which the
 * receiver checks. A steady mesh exchanges one digest per pair of peers per interval.
 */
export class AntiEntropy {
  readonly stats: AntiEntropyStats = { rounds: 0, messages: 0, bytes: 0, idsSent: 0, recordsPushed: 0, digestsComputed: 0, digestsReused: 0, resultsRepaired: 0 }
  private readonly c: TaskComponents
  /**
   * The ids this node shares with each peer, and its digests for them, kept while the index does
   * not change: each round went over every record this node keeps and hashed every bucket, for each
   * peer, asking and answering (a third of a second a digest at 200,000 records), so an idle node's
   * CPU grew with every task it kept.
   */
  private shared: { version: number, byPeer: Map<string, readonly string[]> } | undefined
  /** by digestKey: the asking side and the answering side of a pair may bucket differently */
  private readonly digests = new Map<string, CachedDigest>()
  private readonly log: Logger
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

  /**
   * Ids this node holds that `peer` should hold too: both are members of the record's placement.
   * From the round's grouping while the index has not changed since; else read for this peer alone.
   */
  sharedWith (peer: string): readonly string[] {
    if (this.shared?.version === this.c.replica.indexVersion) return this.shared.byPeer.get(peer) ?? []
    const me = this.c.peerId.toString()
    const out: string[] = []
    for (const [id, members] of this.c.replica.members) if (members.includes(peer) && members.includes(me)) out.push(id)
    return out
  }

  /** The ids of the records this node is a member for, by each other member; regrouped only after the index changed. */
  private byPeer (): Map<string, readonly string[]> {
    const version = this.c.replica.indexVersion
    if (this.shared?.version === version) return this.shared.byPeer
    const me = this.c.peerId.toString()
    const byPeer = new Map<string, string[]>()
    for (const [id, members] of this.c.replica.members) {
      if (!members.includes(me)) continue
      for (const peer of members) {
        if (peer === me) continue
        // pushed in place: copying the list for each id made a round quadratic in the records kept
        const ids = byPeer.get(peer)
        if (ids === undefined) byPeer.set(peer, [id])
        else ids.push(id)
      }
    }
    this.shared = { version, byPeer }
    // made at an older index: never given again
    for (const [key, cached] of this.digests) if (cached.version !== version) this.digests.delete(key)
    return byPeer
  }

  /**
   * This node's bucket hashes of the records it shares with `peer` (`ids`, read at index version
   * `idsVersion`), `digits` hex digits a bucket. Kept and given again while the index does not
   * change, unless a record in it is unfinished and changed within antiEntropyMinAgeMs (or is dated
   * later, by a skewed clock): whether such a record is compared by content changes with the clock alone.
   */
  digest (peer: string, digits: number, now = Date.now(), ids?: readonly string[], idsVersion?: number): Record<string, string> {
    const version = this.c.replica.indexVersion
    const key = digestKey(peer, digits)
    const cached = this.digests.get(key)
    if (cached !== undefined && cached.version === version) {
      this.stats.digestsReused++
      return cached.buckets
    }
    this.stats.digestsComputed++
    const cutoff = now - this.c.options.antiEntropyMinAgeMs
    // ids read before the index changed make a digest of then, sent but not kept
    let keep = ids === undefined || idsVersion === version
    const clockBound = (): void => { keep = false }
    const buckets = bucketHashes(ids ?? this.sharedWith(peer), id => this.hashFor(id, cutoff, now, clockBound), digits)
    if (keep) this.digests.set(key, { version, buckets })
    else this.digests.delete(key)
    return buckets
  }

  /**
   * The hash a comparison uses for `id`: its content's, or IN_FLUX for an unfinished record changed
   * within antiEntropyMinAgeMs. A member that lacks a record in flux still differs (and gets it),
   * but two copies in flux are not compared: under load that pushed records between members that
   * the task's own requests were still bringing together. Undefined when this node lacks it, or
   * holds it only as a copy outside its placement (never hashed): a peer that counts this node a
   * member then sends its copy at once, where two copies that name different placements would
   * differ anyway once settled.
   */
  comparableHash (id: string, now = Date.now()): string | undefined {
    return this.hashFor(id, now - this.c.options.antiEntropyMinAgeMs, now)
  }

  /** comparableHash with its cutoff; `clockBound` is told when the answer can change with the clock alone. */
  private hashFor (id: string, cutoff: number, now: number, clockBound?: () => void): string | undefined {
    const hash = this.c.replica.hashes.get(id)
    if (hash === undefined) return undefined
    const changed = this.c.replica.liveChangedAt(id)
    if (changed === undefined || changed <= cutoff) return hash
    clockBound?.()
    // a change dated later by a skewed clock is not held back: it counts as settled
    return changed > now ? hash : IN_FLUX
  }

  /** The ids, among `entries` a peer sent, that this node should be sent: it lacks them, or both copies settled and differ. */
  needed (entries: Array<[string, string]>): string[] {
    const now = Date.now()
    return entries.filter(([id, theirs]) => {
      const mine = this.comparableHash(id, now)
      return mine === undefined || (mine !== IN_FLUX && theirs !== IN_FLUX && mine !== theirs)
    }).map(([id]) => id)
  }

  async runRound (): Promise<void> {
    this.stats.rounds++
    const version = this.c.replica.indexVersion
    for (const [peer, ids] of this.byPeer()) {
      if (!this.running) return
      await this.syncWith(this.c.replicaSets.peerId(peer), ids, version).catch(err => { this.log('sync with %s failed: %s', peer, err.message) })
    }
    await this.repairResults()
  }

  /**
   * Asks the other members for the result of each completed copy held here without it. A record's
   * hash names the outcome, not whether its result is stored, so no digest shows the gap: such a
   * copy (a member that never granted, then took the certified record from a notice or a read that
   * brought no result) was repaired only by a read of that task on this node.
   */
  private async repairResults (): Promise<void> {
    const me = this.c.peerId.toString()
    // a member that did not answer is not asked again this round: each would cost rpcTimeoutMs
    const silent = new Set<string>()
    for (const id of this.c.replica.wantedResults(this.c.options.resultRepairsPerRound)) {
      try {
        const record = await this.c.replica.copyLackingResult(id)
        for (const member of record?.placement.members ?? []) {
          if (!this.running) return
          if (member === me || silent.has(member)) continue
          const answer = await this.send(this.c.replicaSets.peerId(member), { op: 'get', id }).catch(() => undefined)
          if (answer === undefined) silent.add(member)
          // checked as a read checks a member's answer: the copy must be the task asked about
          const got = recordsGetAnswer.safeParse(answer)
          if (!got.success || got.data.record?.task.id !== id || got.data.result === undefined) continue
          await this.c.replica.put(got.data.record, got.data.result)
          if (await this.c.replica.lacksResult(id)) continue
          this.stats.resultsRepaired++
          break
        }
      } catch (err: any) {
        // one task's failure (a read or a write refused) leaves the others to be asked
        this.log('result of %s not repaired: %s', id, err?.message)
      }
    }
  }

  /** `ids`: what this node shares with `peer`, read at index version `idsVersion` (the round's start). */
  private async syncWith (peer: PeerId, ids: readonly string[], idsVersion: number): Promise<void> {
    const now = Date.now()
    const hashOf = (id: string): string | undefined => this.comparableHash(id, now)
    // a peer from before hashing versions refuses the field: the two cannot compare, so nothing is pushed
    const ask = async (digits: number): Promise<Set<string>> =>
      new Set<string>((await this.send(peer, { op: 'digest', buckets: this.digest(peer.toString(), digits, now, ids, idsVersion), hashing: RECORD_HASHING }))?.differ ?? [])
    let digits = bucketDigits(ids.length, rpcFrameBytes(this.c.options) / 2)
    let differ = await ask(digits)
    // a peer from before finer buckets answers with its 16, and every finer one of ours "differs":
    // asked again in its terms, a quiet pair sends no ids
    if (digits > 1 && [...differ].some(b => b.length !== digits)) differ = await ask(digits = 1)
    if (differ.size === 0) return
    const entries = ids.filter(id => differ.has(bucketOf(id, digits))).map(id => [id, hashOf(id) ?? ''] as [string, string])
    // in requests a peer takes: one too long (over its frame limit, or MAX_IDS_ENTRIES) was refused
    // whole, every round, and that pair of peers stopped repairing for good
    const per = idsPerRequest(this.c.options)
    for (let i = 0; i < entries.length && this.running; i += per) {
      this.stats.idsSent += Math.min(per, entries.length - i)
      const { need } = await this.send(peer, { op: 'ids', entries: entries.slice(i, i + per) })
      await this.push(peer, need ?? [])
    }
  }

  private async push (peer: PeerId, ids: string[]): Promise<void> {
    const maxBytes = Math.min(256 * 1024, rpcFrameBytes(this.c.options) / 2)
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
      if (!this.running) return
      const { record, result } = await this.c.replica.get(id)
      if (record === undefined) continue
      const item = result === undefined ? { record } : { record, result }
      // bytes, not characters: a frame limits bytes, and text outside ASCII takes up to 3 a character
      const bytes = byteLength(item)
      // batches of up to 256 KiB: one request, not one per record, but no giant frames, and none
      // over half the frame a peer reads (a record alone may be larger: it goes out alone)
      if (size + bytes > maxBytes) await flush()
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
