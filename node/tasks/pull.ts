import { claimableSchema } from '../../protocols/records/index.js'
import { hasValidId } from '../../protocols/task/index.js'
import type { TaskComponents } from './components.js'
import type { Placement, Task } from '../../protocols/task/index.js'
import type { PeerId } from '@libp2p/interface'

export interface Pulled {
  found: number
  /** the capabilities asked for: those with a free slot here */
  asked: string[]
  /**
   * Capabilities of which claimable tasks were left behind, and of which this node took some: it
   * found more than it had free slots for, or an answer was cut at the limit asked.
   */
  leftBehind: Set<string>
  /** in how many ms the first task left out as too young (pullMinAgeMs) comes of age, by the local list or a peer's answer, if one was */
  youngDueInMs?: number
}

/**
 * The pull path: asks a few peers (and the local replica) for tasks they would lease now, and
 * hands each to `consider` (which answers whether this node claims it). Gossip drops messages;
 * this is how a task it dropped is still run. Answers what it found (Pulled); undefined when it
 * asked nobody (no slot free for anything this node runs).
 */
export async function pullTasks (c: TaskComponents, stats: { pulledTasks: number }, consider: (task: Task, placement: Placement) => Promise<boolean>): Promise<Pulled | undefined> {
  const free = c.runtime.freeSlots()
  // only what this node could run now: asking for more only makes claims that fail
  const capabilities = c.runtime.capabilities().map(cap => cap.name).filter(name => (free[name] ?? 0) > 0)
  const limit = Math.max(0, ...capabilities.map(name => free[name] ?? 0))
  if (capabilities.length === 0 || limit === 0) return undefined
  const others = c.presence.live().filter(p => !p.self)
  const picked = shuffle(others).slice(0, c.options.pullPeers).map(p => c.replicaSets.peerId(p.peerId))
  const minAgeMs = c.options.pullMinAgeMs
  // the lists overlap (a member's and its peers'): each task is counted and considered once
  const seen = new Set<string>()
  const found = new Map<string, number>()
  const taken = new Map<string, number>()
  let cut = false
  // each list is taken as it comes: the local one at once, not after the slowest peer's answer
  // (slots idled through the peers' round trips while a backlog waited in this node's own store)
  const take = async (list: Promise<unknown[]>): Promise<void> => {
    let items: unknown[]
    try {
      items = await list
    } catch {
      return // a peer that did not answer: the others' lists and the next pull stand in
    }
    if (items.length >= limit) cut = true
    for (const item of items) {
      // a peer's answer is input like any other: a forged task is dropped
      const parsed = claimableSchema.safeParse(item)
      if (!parsed.success || !hasValidId(parsed.data.task) || seen.has(parsed.data.task.id)) continue
      const { task, placement } = parsed.data
      seen.add(task.id)
      stats.pulledTasks++
      found.set(task.capability, (found.get(task.capability) ?? 0) + 1)
      if (await consider(task, placement)) taken.set(task.capability, (taken.get(task.capability) ?? 0) + 1)
    }
  }
  const young: { inMs?: number } = {}
  const askPeer = async (peer: PeerId): Promise<unknown[]> => {
    const answer = await c.records(peer, { op: 'pending', capabilities, limit, minAgeMs })
    // a peer's word, so bounded: no later than the minimum age (a task cannot be younger), and the
    // pace never pulls again sooner than pullAgainMs whatever it says
    const due = answer?.youngDueInMs
    if (typeof due === 'number' && Number.isFinite(due) && due >= 0) young.inMs = Math.min(young.inMs ?? Infinity, due, minAgeMs)
    return answer?.tasks as unknown[] ?? []
  }
  const takes = await Promise.allSettled([take(c.replica.claimable(new Set(capabilities), limit, minAgeMs, young)), ...picked.map(async peer => { await take(askPeer(peer)) })])
  // a failed claim's own errors are the claimer's; one from considering (the store) fails the round
  for (const t of takes) if (t.status === 'rejected') throw t.reason
  // a capability this node took none of (others rank first, its claims back off) is not pulled for
  // again at once: that would be a pull each freed slot for ever
  const leftBehind = new Set(capabilities.filter(cap => (taken.get(cap) ?? 0) > 0 && (cut || (found.get(cap) ?? 0) > (free[cap] ?? 0))))
  return { found: seen.size, asked: capabilities, leftBehind, youngDueInMs: young.inMs }
}

function shuffle<T> (items: T[]): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const t = a[i] as T
    a[i] = a[j] as T
    a[j] = t
  }
  return a
}
