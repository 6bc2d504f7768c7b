import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_CATALOG_EVERY, DEFAULT_EARLY_GAP_MS, DEFAULT_EXPIRY_INTERVALS, DEFAULT_FORGET_AFTER_EXPIRIES, DEFAULT_INTERVAL_MS, DEFAULT_INTERVAL_RATIO, DEFAULT_MAX_PEERS, DEFAULT_WELCOMERS } from './constants.js'
import type { CapabilityInfo, Presence } from '../gossip/index.js'
import type { LastStall, PeerPresence, PresenceComponents, PresenceInit, PresenceStats } from './types.js'

/** A peer's last announcement, and when it arrived by our clock. */
interface Heard {
  presence: Presence
  lastSeen: number
  /** when every connection to the peer closed since this announcement, by our clock (see disconnected) */
  cutAt?: number
  /** connected again since the cut: a new process, or one that woke (see connected) */
  reconnected?: true
}

/** A peer's clock further off than this is taken for a bad send time, not a clock: a day. */
const MAX_CLOCK_OFFSET_MS = 86_400_000
/** How long clockOffset's figure is kept when no announcement arrives: a peer that fell silent drops out of it by then. */
const CLOCK_OFFSET_KEPT_MS = 1_000

/**
 * Who is live and what they offer. A peer is live while its announcements keep coming; a newly
 * subscribed peer gets our announcement at once instead of after a full interval.
 */
export class PresenceService {
  readonly stats: PresenceStats = { intervalsClamped: 0, peersEvicted: 0, peersForgotten: 0, farewells: 0, peersCut: 0, announceFailures: 0 }
  private readonly c: PresenceComponents
  private readonly init: PresenceInit
  private readonly now: () => number
  private readonly lastStall: () => LastStall | undefined
  /** by peer id, least recently heard first (each announcement moves its peer to the end) */
  private readonly peers = new Map<string, Heard>()
  /** peers that said farewell: its send time by their clock (what they announced before it is stale), and when it came by ours */
  private readonly farewells = new Map<string, { at: number, heardAt: number }>()
  /** clockOffset's last figure: every submit reads it, so it is worked out again only after an announcement arrives, or a second */
  private clock?: { offset: number, at: number }
  private timer?: ReturnType<typeof setTimeout>
  private soon?: ReturnType<typeof setTimeout>
  /** when the pending early announcement goes out, by this node's clock */
  private soonAt = Infinity
  private running = false
  private announced = 0
  /** when this node last announced, by its clock */
  private lastAnnouncedAt = -Infinity
  private lastCatalog = ''
  private catalogDue = false
  /** which capabilities had a free slot in our last announcement */
  private lastAvailability = ''
  private readonly onPresence = (evt: CustomEvent<Presence>): void => {
    const p = evt.detail
    if (p.from === this.c.peerId.toString()) return
    const known = this.peers.get(p.from)
    // an announcement from before the peer's farewell (delivered late, or sent while it stopped) does
    // not bring it back
    const farewell = this.farewells.get(p.from)
    if (farewell !== undefined && this.sentBefore(p.at, farewell.at, farewell.heardAt, this.intervalMs)) return
    // nor does one it sent before its connections closed (checked while it was on its way): its
    // send time, by its clock as its last announcement placed it against ours, not after the cut.
    // Once it connected again, what comes is from a process that lives (a new one may run on
    // another clock: one set back was out of view for as long as the clock went back)
    if (known?.cutAt !== undefined && known.reconnected !== true && this.sentBefore(p.at, known.cutAt + (known.presence.at - known.lastSeen), known.cutAt, known.presence.intervalMs)) return
    if (p.leaving === true) {
      // a farewell older than what the peer said since (a replay) is not news
      if (known !== undefined && p.at < known.presence.at) return
      if (known !== undefined) this.init.onLeaving?.(p.from)
      this.peers.delete(p.from)
      this.farewells.delete(p.from)
      this.farewells.set(p.from, { at: p.at, heardAt: this.now() })
      if (this.farewells.size > (this.init.maxPeers ?? DEFAULT_MAX_PEERS)) this.farewells.delete(this.farewells.keys().next().value as string)
      this.clock = undefined
      this.stats.farewells++
      return
    }
    this.farewells.delete(p.from)
    // kept with the clamped interval: expiry and forgetting both read it
    const presence = { ...p, intervalMs: this.trustedInterval(p), capabilities: withKnownInfo(p.capabilities, known?.presence.capabilities) }
    this.peers.delete(p.from)
    this.clock = undefined
    this.peers.set(p.from, { presence, lastSeen: this.now() })
    if (known === undefined) {
      this.evictPastLimit()
      this.welcome()
      this.learn(p)
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (evt.detail.subscriptions.some(s => s.subscribe && s.topic === this.c.presenceTopic)) this.welcome()
  }

  /**
   * Whether an announcement sent at `at` (the peer's clock) predates `mark` (a farewell or a cut, by
   * the peer's clock), while that mark, made at `markedAt` by ours, is under an expiry old: past it,
   * a peer restarted with its clock set back, that never reconnects to this node (a large mesh), is
   * heard again.
   */
  private sentBefore (at: number, mark: number, markedAt: number, intervalMs: number): boolean {
    return at <= mark && this.now() - markedAt <= this.expiryMs(intervalMs)
  }

  constructor (components: PresenceComponents, init: PresenceInit) {
    this.c = components
    this.init = init
    this.now = init.now ?? Date.now
    this.lastStall = init.lastStall ?? (() => undefined)
  }

  get intervalMs (): number {
    return this.init.intervalMs ?? DEFAULT_INTERVAL_MS
  }

  /** How many peers the view holds, live or not (bounded by `maxPeers`). */
  get size (): number {
    return this.peers.size
  }

  /** The peer's declared interval within [ours / ratio, ours × ratio]; one outside is counted. */
  private trustedInterval (p: Presence): number {
    const ratio = this.init.intervalRatio ?? DEFAULT_INTERVAL_RATIO
    const min = this.intervalMs / ratio
    const max = this.intervalMs * ratio
    if (p.intervalMs >= min && p.intervalMs <= max) return p.intervalMs
    const clamped = Math.min(max, Math.max(min, p.intervalMs))
    this.stats.intervalsClamped++
    this.c.log('%s declares a presence interval of %d ms; taken as %d ms', p.from, p.intervalMs, clamped)
    return clamped
  }

  /** Past `maxPeers`, the peers heard from least recently go first: the map keeps that order. */
  private evictPastLimit (): void {
    const max = this.init.maxPeers ?? DEFAULT_MAX_PEERS
    for (const id of this.peers.keys()) {
      if (this.peers.size <= max) return
      this.peers.delete(id)
      this.stats.peersEvicted++
    }
  }

  /** Drops peers silent for many of their expiry periods, so the map does not grow with churn. */
  prune (now = this.now()): void {
    const after = this.init.forgetAfterExpiries ?? DEFAULT_FORGET_AFTER_EXPIRIES
    const stall = this.stallAt(now)
    for (const [id, heard] of this.peers) {
      if (silentMs(heard, now, stall) > this.expiryMs(heard.presence.intervalMs) * after) {
        this.peers.delete(id)
        this.stats.peersForgotten++
      }
    }
  }

  start (): void {
    this.running = true
    this.c.gossip.addEventListener('presence', this.onPresence)
    this.c.pubsub.addEventListener('subscription-change', this.onSubscriptionChange as EventListener)
    void this.tick()
  }

  /**
   * Tells the mesh this node is stopping, so peers stop handing it tasks now. Best effort: a
   * message that does not get out leaves peers to expire this node as if it had crashed.
   */
  async farewell (): Promise<void> {
    if (!this.running) return
    // nothing more goes out after it: a slot freed by an aborted run would announce this node anew
    this.running = false
    clearTimeout(this.timer)
    clearTimeout(this.soon)
    this.soon = undefined
    this.soonAt = Infinity
    try {
      await this.c.gossip.publishPresence({ version: this.init.version, intervalMs: this.intervalMs, capabilities: [], freeSlots: {}, addrs: [], leaving: true })
    } catch (err: any) {
      this.c.log('farewell not sent: %s', err.message)
    }
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    clearTimeout(this.soon)
    this.c.gossip.removeEventListener('presence', this.onPresence)
    this.c.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange as EventListener)
  }

  /** A newcomer learns of us early from a few peers, and of the rest within one interval. */
  private welcome (): void {
    if (Math.random() * this.peers.size >= (this.init.welcomers ?? DEFAULT_WELCOMERS)) return
    this.catalogDue = true
    this.announceSoon()
  }

  /**
   * A slot was taken or freed. Peers rank claimers among those with a free slot, so only a
   * capability going full or free again is worth an early announcement; the counts ride on the
   * next regular one (a flood per task start and end was most of the gossip under load).
   */
  slotsChanged (): void {
    if (availability(this.init.freeSlots()) === this.lastAvailability) return
    const gap = this.init.earlyGapMs ?? DEFAULT_EARLY_GAP_MS
    this.announceSoon(Math.max(50, this.lastAnnouncedAt + gap - this.now()))
  }

  /**
   * A peer answered that it has no free slot for `capability` (it declined a task handed to it):
   * newer than its last announcement, so it stands until the next one replaces it.
   */
  markFull (peerId: string, capability: string): void {
    const known = this.peers.get(peerId)
    if (known === undefined || (known.presence.freeSlots[capability] ?? 0) === 0) return
    known.presence = { ...known.presence, freeSlots: { ...known.presence.freeSlots, [capability]: 0 } }
  }

  /** Announce now-ish: capabilities or someone new arrived. A sooner request moves a pending one up. */
  announceSoon (delayMs = 50): void {
    if (!this.running) return
    const at = this.now() + delayMs
    if (this.soon !== undefined && this.soonAt <= at) return
    clearTimeout(this.soon)
    this.soonAt = at
    this.soon = setTimeout(() => {
      this.soon = undefined
      this.soonAt = Infinity
      void this.announceOrLog()
    }, delayMs)
  }

  /** Live peers, this node included. */
  live (): PeerPresence[] {
    const now = this.now()
    const stall = this.stallAt(now)
    const out: PeerPresence[] = [{
      peerId: this.c.peerId.toString(),
      version: this.init.version,
      capabilities: this.init.capabilities(),
      freeSlots: this.init.freeSlots(),
      lastSeen: now,
      self: true
    }]
    for (const [peerId, heard] of this.peers) {
      if (!this.heardLately(heard, now, stall)) continue
      const { presence, lastSeen } = heard
      out.push({ peerId, version: presence.version, capabilities: presence.capabilities, freeSlots: presence.freeSlots, lastSeen, self: false })
    }
    return out
  }

  /**
   * How far the mesh's clocks run from this node's: the median over the live peers and this node
   * (at 0), of two middle values the one nearer 0. A peer's figure is its announcement's send time
   * by its clock against when it arrived here (a delivery's delay reads as a little behind); one
   * not an integer time, or more than a day off, is not counted. So a skewed node moves its own
   * figure once it hears two peers that agree, and one lying peer moves nobody's.
   */
  clockOffset (): number {
    const now = this.now()
    if (this.clock !== undefined && now - this.clock.at < CLOCK_OFFSET_KEPT_MS) return this.clock.offset
    this.clock = { offset: this.medianOffset(now, this.stallAt(now)), at: now }
    return this.clock.offset
  }

  private medianOffset (now: number, stall: Stall | undefined): number {
    const offsets = [0]
    for (const heard of this.peers.values()) {
      const { presence, lastSeen } = heard
      const offset = presence.at - lastSeen
      if (this.heardLately(heard, now, stall) && Number.isSafeInteger(presence.at) && Math.abs(offset) <= MAX_CLOCK_OFFSET_MS) offsets.push(offset)
    }
    offsets.sort((x, y) => x - y)
    const mid = offsets.length >> 1
    if (offsets.length % 2 === 1) return Math.round(offsets[mid] as number)
    const [low, high] = [offsets[mid - 1] as number, offsets[mid] as number]
    return Math.round(Math.abs(low) <= Math.abs(high) ? low : high)
  }

  /** Ids of the live peers, this node first: live() without building each peer's view. */
  liveIds (): string[] {
    const now = this.now()
    const stall = this.stallAt(now)
    const out = [this.c.peerId.toString()]
    for (const [peerId, heard] of this.peers) {
      if (this.heardLately(heard, now, stall)) out.push(peerId)
    }
    return out
  }

  /** How long a peer may stay silent before it drops out of the view: a few of its own intervals. */
  private expiryMs (intervalMs: number): number {
    return intervalMs * (this.init.expiryIntervals ?? DEFAULT_EXPIRY_INTERVALS)
  }

  /** This process's latest stall on our clock, while it still counts (see PresenceInit.lastStall). */
  private stallAt (now: number): Stall | undefined {
    const s = this.lastStall()
    if (s === undefined || s.endedAgoMs > this.expiryMs(this.intervalMs)) return undefined
    const end = now - s.endedAgoMs
    return { start: end - s.lengthMs, end }
  }

  /** Whether a peer is live: silent (our latest stall not counted) for no more than its expiry. */
  private heardLately (heard: Heard, now: number, stall: Stall | undefined): boolean {
    return heard.cutAt === undefined && silentMs(heard, now, stall) <= this.expiryMs(heard.presence.intervalMs)
  }

  isLive (peerId: string): boolean {
    return this.liveIds().includes(peerId)
  }

  /**
   * Every connection to the peer closed (libp2p's peer:disconnect). A killed process's sockets
   * close at once, an expiry (15 s by default) before its silence would tell: it is not live until
   * it is heard again, so the next member of its placements takes up their recovery and no task is
   * offered to it meanwhile. A host gone, or paused, closes nothing: a failed ping or the expiry
   * tells. A peer whose connection closed for any other reason is live at its next announcement.
   */
  disconnected (peerId: string): void {
    const heard = this.peers.get(peerId)
    const now = this.now()
    // connected again after a cut, and gone again before anything it sent was taken: cut anew, so
    // what its dead processes sent does not bring it back
    if (heard?.reconnected === true) {
      heard.cutAt = now
      delete heard.reconnected
      return
    }
    const stall = this.stallAt(now)
    // a stall of this process fails pings and closes connections to live peers: not taken for a
    // death, the expiry (which leaves the stall out) decides, as it does for their silence
    if (heard === undefined || heard.cutAt !== undefined || stall !== undefined || !this.heardLately(heard, now, stall)) return
    // the last look at it as live, as at a farewell: a peer that joined since membership last
    // folded the view in stays a member of placements chosen now
    this.init.onLeaving?.(peerId)
    heard.cutAt = now
    this.clock = undefined
    this.stats.peersCut++
  }

  /**
   * A connection to the peer opened (libp2p's peer:connect). After a cut its next announcement
   * is taken, whatever its send time: the process at the other end is alive, and one restarted with
   * its clock set back sends times from before the cut, by the old process's clock, for as long as
   * the clock went back (an NTP step back, then a restart, hid a node for minutes).
   */
  connected (peerId: string): void {
    const heard = this.peers.get(peerId)
    if (heard?.cutAt !== undefined) heard.reconnected = true
  }

  /** Forget a peer at once (it disconnected and said goodbye, or a test cut it off). */
  forget (peerId: string): void {
    this.peers.delete(peerId)
  }

  private learn (p: Presence): void {
    try {
      // the envelope was signed by p.from, so these are the addresses that peer itself announced
      const addrs = p.addrs.map(a => multiaddr(a))
      this.c.learnAddresses(peerIdFromString(p.from), addrs).catch(err => { this.c.log('cannot store addresses of %s: %s', p.from, err.message) })
    } catch (err: any) {
      this.c.log('bad addresses from %s: %s', p.from, err.message)
    }
  }

  private async tick (): Promise<void> {
    if (!this.running) return
    // a failed announcement must not end the loop: the next one may go out
    await this.announceOrLog()
    this.prune()
    // stopped while announcing: no timer may outlive stop (it held a stopped node's process open)
    if (this.running) this.timer = setTimeout(() => { void this.tick() }, this.intervalMs)
  }

  /** An announcement whose failure is counted and logged: left unhandled, a rejection would end the process. */
  private async announceOrLog (): Promise<void> {
    try {
      await this.announce()
    } catch (err: any) {
      this.stats.announceFailures++
      this.c.log('presence announcement failed: %s', err.message)
    }
  }

  private async announce (): Promise<void> {
    if (!this.running) return
    // this one carries whatever an early one pending would have
    clearTimeout(this.soon)
    this.soon = undefined
    this.soonAt = Infinity
    const capabilities = this.init.capabilities()
    const catalog = JSON.stringify(capabilities)
    const full = this.catalogDue || catalog !== this.lastCatalog || this.announced % (this.init.catalogEvery ?? DEFAULT_CATALOG_EVERY) === 0
    this.announced++
    this.lastAnnouncedAt = this.now()
    this.catalogDue = false
    this.lastCatalog = catalog
    const freeSlots = this.init.freeSlots()
    this.lastAvailability = availability(freeSlots)
    await this.c.gossip.publishPresence({
      version: this.init.version,
      intervalMs: this.intervalMs,
      // a model name stays on the short form: a door lists models from any one announcement
      capabilities: full ? capabilities : capabilities.map(c => c.model === undefined ? { name: c.name } : { name: c.name, model: c.model }),
      freeSlots,
      addrs: this.c.addresses().slice(0, 16).map(a => a.toString())
    })
  }
}

/** A names-only announcement keeps what the peer told us of each capability before. */
function withKnownInfo (announced: CapabilityInfo[], known: CapabilityInfo[] | undefined): CapabilityInfo[] {
  if (known === undefined) return announced
  return announced.map(cap => cap.description !== undefined || cap.inputSchema !== undefined ? cap : (known.find(k => k.name === cap.name && k.model === cap.model) ?? cap))
}

/** A stall of this process, on our clock. */
interface Stall { start: number, end: number }

/** How long a peer has been silent while this process could listen: the part in our latest stall is taken off. */
function silentMs (heard: Heard, now: number, stall: Stall | undefined): number {
  const unread = stall === undefined ? 0 : Math.max(0, stall.end - Math.max(stall.start, heard.lastSeen))
  return now - heard.lastSeen - unread
}

function availability (freeSlots: Record<string, number>): string {
  return Object.keys(freeSlots).filter(name => (freeSlots[name] ?? 0) > 0).sort().join(',')
}
