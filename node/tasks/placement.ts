import { createHash } from 'node:crypto'
import { z } from 'zod'
import { xor } from './replica-sets.js'
import type { ReplicaSets } from './replica-sets.js'
import type { Placement } from '../../protocols/task/index.js'
import type { Namespace } from '../store/namespace.js'

const MEMBERS_KEY = 'members'
const membersSchema = z.record(z.string().max(128), z.number())

export interface MembershipInit {
  self: string
  /** the live view (presence) */
  liveIds: () => string[]
  /** where the last-seen times live across restarts */
  meta: Namespace<unknown>
  /** peers seen this recently count as members. @default 600_000 */
  windowMs: number
  /** peers per placement. @default 3 */
  replicationFactor: number
  replicaSets: ReplicaSets
  now?: () => number
  log?: (format: string, ...args: unknown[]) => void
}

/**
 * The peers this node knows to be members of the mesh, live or recently seen, kept on disk. A
 * placement is chosen from them and not from the live view alone, so a node cut off from a mesh
 * it knew still pins members it cannot reach, and cannot form a majority on its own.
 */
export class Membership {
  private readonly init: MembershipInit
  private readonly lastSeen = new Map<string, number>()
  private readonly now: () => number
  private dirty = false
  private saving?: Promise<void>
  /** saves of a newly seen peer that failed (the disk full, the store closed by a stop): the next save carries the times */
  readonly stats = { saveFailures: 0 }

  constructor (init: MembershipInit) {
    this.init = init
    this.now = init.now ?? Date.now
  }

  async load (): Promise<void> {
    const parsed = membersSchema.safeParse(await this.init.meta.get(MEMBERS_KEY))
    if (parsed.success) for (const [id, at] of Object.entries(parsed.data)) this.lastSeen.set(id, at)
  }

  /** Folds the live view in; a newly seen peer is saved at once, fresher times by the next `save`. */
  refresh (): void {
    const now = this.now()
    let added = false
    for (const id of this.init.liveIds()) {
      if (!this.lastSeen.has(id)) added = true
      this.lastSeen.set(id, now)
    }
    this.dirty = true
    // a rejection left unhandled would end the process
    if (added) {
      this.save().catch((err: any) => {
        this.stats.saveFailures++
        this.init.log?.('saving the members seen failed: %s', String(err?.message ?? err))
      })
    }
  }

  /** How long `id` has been out of the live view (0 while live; the window when never seen). */
  silentFor (id: string): number {
    if (id === this.init.self) return 0
    const at = this.lastSeen.get(id)
    return at === undefined ? this.init.windowMs : Math.max(0, this.now() - at)
  }

  isLive (id: string): boolean {
    return id === this.init.self || this.init.liveIds().includes(id)
  }

  /** Live members not in `exclude`, nearest to the task first: replacements for a move. */
  replacements (taskId: string, exclude: readonly string[]): string[] {
    const live = new Set([this.init.self, ...this.init.liveIds()])
    const key = createHash('sha256').update(Buffer.from(taskId, 'hex')).digest()
    return this.init.replicaSets.order(key, [...live].filter(id => !exclude.includes(id)))
  }

  /**
   * Members seen within the window, this node included, forgetting the rest, but never below R:
   * while fewer than R - 1 others were seen within the window, the most recently seen others are
   * kept, however old. Forgotten down to itself, a node cut off for longer than the window (or
   * restarted after it) pinned placements of itself alone and acknowledged tasks on its own disk,
   * and two sides of a long partition could each pin and run the same task (an idempotency key).
   * So a mesh that shrinks below R for good keeps its lost members in placements until new peers
   * are seen.
   */
  members (): string[] {
    const since = this.now() - this.init.windowMs
    const others = [...this.lastSeen].filter(([id]) => id !== this.init.self)
    const recent = others.filter(([, at]) => at >= since)
    // the usual case, read on every submit: enough peers seen within the window, no sort
    const kept = recent.length >= this.init.replicationFactor - 1 ? recent : others.sort((a, b) => b[1] - a[1]).slice(0, this.init.replicationFactor - 1)
    const keep = new Set(kept.map(([id]) => id))
    for (const [id] of others) if (!keep.has(id)) this.lastSeen.delete(id)
    return [this.init.self, ...keep]
  }

  /**
   * A test of task ids: whether this node is among the R members `choose` would pick for it now.
   * Made once per submit and run for each nonce tried; distances are compared by their first four
   * bytes, and in full only on a tie there.
   */
  includesSelf (): (taskId: string) => boolean {
    this.refresh()
    const sets = this.init.replicaSets
    const r = this.init.replicationFactor
    const mine = sets.kadId(this.init.self)
    const others = this.members().filter(m => m !== this.init.self).map(m => sets.kadId(m))
    if (others.length < r) return () => true
    const lead = others.map(o => o.readUInt32BE(0))
    const mineLead = mine.readUInt32BE(0)
    return taskId => {
      const key = createHash('sha256').update(Buffer.from(taskId, 'hex')).digest()
      const k = key.readUInt32BE(0)
      const d = (mineLead ^ k) >>> 0
      let closer = 0
      for (let i = 0; i < others.length; i++) {
        const od = ((lead[i] as number) ^ k) >>> 0
        if (od < d || (od === d && Buffer.compare(xor(others[i] as Buffer, key), xor(mine, key)) < 0)) {
          if (++closer >= r) return false
        }
      }
      return true
    }
  }

  /** The R members closest to the task in XOR space, at epoch 0. */
  choose (taskId: string): Placement {
    this.refresh()
    const key = createHash('sha256').update(Buffer.from(taskId, 'hex')).digest()
    const members = this.init.replicaSets.order(key, this.members()).slice(0, this.init.replicationFactor)
    return { epoch: 0, members }
  }

  async save (): Promise<void> {
    if (!this.dirty && this.saving === undefined) return
    await this.saving
    this.dirty = false
    this.saving = this.init.meta.put(MEMBERS_KEY, Object.fromEntries(this.lastSeen), { sync: true }).finally(() => { this.saving = undefined })
    await this.saving
  }
}
