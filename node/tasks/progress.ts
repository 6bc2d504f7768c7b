import { MAX_PROGRESS_EVENT_BYTES, MAX_PROGRESS_ITEMS } from '../../protocols/records/index.js'
import type { ProgressItem } from '../../protocols/records/index.js'
import type { Logger } from '@libp2p/interface'

/** One progress event as a listener on the submitter sees it. */
export interface ProgressUpdate extends ProgressItem {
  /** the peer that ran the attempt (for a remote one, the authenticated sender) */
  peer: string
}

export type ProgressListener = (update: ProgressUpdate) => void

export interface ProgressHubStats {
  /** events delivered to this node's record of a task */
  received: number
  /** for a task this node neither submitted nor listens to: dropped */
  unknown: number
  /** from an older attempt than one already heard, or from a claim a later one superseded: dropped */
  stale: number
  /** the same claim's event from another peer than the one that began it: dropped */
  wrongPeer: number
  /** a sequence number already seen: dropped */
  duplicates: number
  /** events missing before one that arrived (lost or dropped on the way) */
  gaps: number
  /** listeners that threw */
  listenerErrors: number
  /** events of a claim the task's placement does not know (not that peer's attempt): dropped */
  forged: number
}

interface TaskProgress {
  /** claims checked against the placement, as claimId/peer */
  verified: Set<string>
  /** events of claims being checked, by claimId/peer */
  held: Map<string, ProgressItem[]>
  claimId?: string
  generation: number
  attempt: number
  /** claims a later one superseded (a few, the latest): their late events are leftovers */
  superseded: string[]
  peer?: string
  nextSeq: number
  events: ProgressUpdate[]
  listeners: Set<ProgressListener>
}

/** How many events of one claim wait while the claim is checked (a model streams fast). */
const MAX_HELD_EVENTS = 1_024
/** Claims of one task checked at once: a peer making up claims cannot hold more than this many queues. */
const MAX_HELD_CLAIMS = 4
/** Superseded claims remembered a task: a task suspended and resumed again and again keeps only the latest. */
const MAX_SUPERSEDED = 8

export interface ProgressHubInit {
  /**
   * Whether `peer` holds claim `claimId` of task `id` (asked of the task's placement once per claim,
   * before its first event is delivered). Without it every claim is believed.
   */
  verify?: (id: string, claimId: string, peer: string) => Promise<boolean>
  /** a peer whose claims need no check: this node */
  self?: string
  /** @default 1_000 (task option progressTasks) */
  maxTasks?: number
  /** @default 256 (task option progressEventsPerTask) */
  maxEventsPerTask?: number
  log?: Logger
}

/**
 * The submitter's side of streamed progress: the tasks this node submitted (or listens to) and
 * their recent events, from whichever peer runs them. Claims are ordered by generation (a redrive
 * numbers attempts from 1 again), then attempt: once a newer attempt is heard the older one's
 * events are dropped, and a listener sees each update with its claim, so it can tell a re-run from
 * a continuation. A claim that resumes a suspended one has the same attempt number (a wait is not
 * a failure), so at the same number the claim heard later supersedes, and a superseded claim is
 * never taken back. A claim's first event waits until the task's placement confirms that the
 * sender holds that claim: a peer cannot speak for a task it does not run. Progress stays a hint
 * all the same; the certified result is the truth.
 */
export class ProgressHub {
  readonly stats: ProgressHubStats = { received: 0, unknown: 0, stale: 0, wrongPeer: 0, duplicates: 0, gaps: 0, listenerErrors: 0, forged: 0 }
  private readonly tasks = new Map<string, TaskProgress>()
  private readonly maxTasks: number
  private readonly maxEvents: number

  constructor (private readonly init: ProgressHubInit = {}) {
    this.maxTasks = init.maxTasks ?? 1_000
    this.maxEvents = init.maxEventsPerTask ?? 256
  }

  /** Keeps the progress of `id` from now on (the submit of a task calls it). */
  track (id: string): void {
    this.entry(id)
  }

  /**
   * Calls `listener` with the events kept so far, then with each new one; answers the unsubscribe.
   * Subscribing also tracks the task.
   */
  subscribe (id: string, listener: ProgressListener): () => void {
    const entry = this.entry(id)
    for (const update of [...entry.events]) this.call(listener, update)
    entry.listeners.add(listener)
    return () => { entry.listeners.delete(listener) }
  }

  /** The events kept for `id`, oldest first. */
  recent (id: string): ProgressUpdate[] {
    return [...this.tasks.get(id)?.events ?? []]
  }

  /** Events from `from`, in the order it sent them. */
  apply (items: ProgressItem[], from: string): void {
    for (const item of items) this.applyOne(item, from)
  }

  private applyOne (item: ProgressItem, from: string): void {
    const entry = this.tasks.get(item.id)
    if (entry === undefined) {
      this.stats.unknown++
      return
    }
    const claim = `${item.claimId}/${from}`
    if (this.init.verify !== undefined && from !== this.init.self && !entry.verified.has(claim)) {
      this.hold(item, from, entry, claim)
      return
    }
    if (entry.claimId !== item.claimId) {
      // a newer attempt supersedes, as does the same attempt resumed; an older one is a leftover
      const generation = item.generation ?? 0
      const older = generation < entry.generation || (generation === entry.generation && item.attempt < entry.attempt)
      if (entry.claimId !== undefined && (older || entry.superseded.includes(item.claimId))) {
        this.stats.stale++
        return
      }
      if (entry.claimId !== undefined) {
        entry.superseded.push(entry.claimId)
        if (entry.superseded.length > MAX_SUPERSEDED) entry.superseded.shift()
      }
      entry.claimId = item.claimId
      entry.generation = generation
      entry.attempt = item.attempt
      entry.peer = from
      entry.nextSeq = 0
    } else if (entry.peer !== from) {
      this.stats.wrongPeer++
      return
    }
    if (item.seq < entry.nextSeq) {
      this.stats.duplicates++
      return
    }
    this.stats.gaps += item.seq - entry.nextSeq
    entry.nextSeq = item.seq + 1
    this.stats.received++
    const update: ProgressUpdate = { ...item, peer: from }
    entry.events.push(update)
    if (entry.events.length > this.maxEvents) entry.events.shift()
    // most recently heard last: the least recent is the one forgotten
    this.tasks.delete(item.id)
    this.tasks.set(item.id, entry)
    for (const listener of [...entry.listeners]) this.call(listener, update)
  }

  /** Keeps a claim's events while the placement is asked whether `from` holds it. */
  private hold (item: ProgressItem, from: string, entry: TaskProgress, claim: string): void {
    const held = entry.held.get(claim)
    if (held !== undefined) {
      if (held.length < MAX_HELD_EVENTS) held.push(item)
      else this.stats.forged++
      return
    }
    if (entry.held.size >= MAX_HELD_CLAIMS) {
      this.stats.forged++
      return
    }
    entry.held.set(claim, [item])
    const verify = this.init.verify as NonNullable<ProgressHubInit['verify']>
    verify(item.id, item.claimId, from).catch(() => false).then(ok => {
      const events = entry.held.get(claim) ?? []
      entry.held.delete(claim)
      if (!ok) {
        this.stats.forged += events.length
        this.init.log?.('progress of %s from %s: not its claim %s, dropped', item.id, from, item.claimId)
        return
      }
      entry.verified.add(claim)
      // the task may have been forgotten meanwhile: applyOne counts that as unknown
      for (const event of events) this.applyOne(event, from)
    }, () => {})
  }

  private entry (id: string): TaskProgress {
    let entry = this.tasks.get(id)
    if (entry === undefined) {
      entry = { generation: 0, attempt: 0, superseded: [], nextSeq: 0, events: [], listeners: new Set(), verified: new Set(), held: new Map() }
      this.tasks.set(id, entry)
      if (this.tasks.size > this.maxTasks) this.evictOne(id)
    }
    return entry
  }

  /** Forgets the least recently heard task nobody listens to (or, failing that, the least recent), never `keep`. */
  private evictOne (keep: string): void {
    for (const [id, entry] of this.tasks) {
      if (id !== keep && entry.listeners.size === 0) {
        this.tasks.delete(id)
        return
      }
    }
    this.tasks.delete(this.tasks.keys().next().value as string)
  }

  private call (listener: ProgressListener, update: ProgressUpdate): void {
    try {
      listener(update)
    } catch (err: any) {
      this.stats.listenerErrors++
      this.init.log?.('progress listener of %s threw: %s', update.id, err?.message)
    }
  }
}

/** A `progress` request is cut at about this many bytes of events. */
const BATCH_BYTES = 256 * 1024

export interface ProgressSenderStats {
  /** events sent to submitters (in requests that were answered) */
  sent: number
  /** events in requests that failed */
  failed: number
  /** events not sent: not JSON, larger than MAX_PROGRESS_EVENT_BYTES, or over the queue limit */
  dropped: number
}

/**
 * The running peer's side: progress events go to the task's submitter over the records protocol.
 * Events for one peer gathered in one turn of the event loop, or while the previous request to it
 * is under way, go as one request, and requests to a peer go one at a time: the submitter gets
 * them in order, a token stream costs a request per turn and peer, not one per token.
 */
export class ProgressSender {
  readonly stats: ProgressSenderStats = { sent: 0, failed: 0, dropped: 0 }
  private readonly queues = new Map<string, { items: Array<{ item: ProgressItem, bytes: number }>, busy: boolean }>()

  constructor (
    private readonly send: (peer: string, items: ProgressItem[]) => Promise<void>,
    private readonly queueLimit = 4_096
  ) {}

  /** The event as it will travel (plain JSON within the size limit), or undefined when it cannot. */
  static wire (event: unknown): ProgressItem['event'] | undefined {
    let text: string | undefined
    try { text = JSON.stringify(event) } catch { return undefined }
    if (text === undefined || Buffer.byteLength(text) > MAX_PROGRESS_EVENT_BYTES) return undefined
    return JSON.parse(text)
  }

  add (peer: string, item: ProgressItem): void {
    let q = this.queues.get(peer)
    if (q === undefined) {
      q = { items: [], busy: false }
      this.queues.set(peer, q)
    }
    q.items.push({ item, bytes: Buffer.byteLength(JSON.stringify(item)) })
    if (q.items.length > this.queueLimit) {
      q.items.shift()
      this.stats.dropped++
    }
    if (q.items.length === 1 && !q.busy) setImmediate(() => { void this.flush(peer) })
  }

  private async flush (peer: string): Promise<void> {
    const q = this.queues.get(peer)
    if (q === undefined || q.busy) return
    q.busy = true
    while (q.items.length > 0) {
      // cut by count and by bytes, well under the RPC frame limit
      let n = 0
      let bytes = 0
      while (n < q.items.length && n < MAX_PROGRESS_ITEMS && (n === 0 || bytes + (q.items[n]?.bytes ?? 0) <= BATCH_BYTES)) bytes += q.items[n++]?.bytes ?? 0
      const batch = q.items.splice(0, n).map(e => e.item)
      try {
        await this.send(peer, batch)
        this.stats.sent += batch.length
      } catch {
        // a hint: the submitter counts the gap, and the result still reaches it
        this.stats.failed += batch.length
      }
    }
    q.busy = false
    this.queues.delete(peer)
  }
}
