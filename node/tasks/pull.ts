import { claimableSchema } from '../../protocols/records/index.js'
import { hasValidId } from '../../protocols/task/index.js'
import type { TaskComponents } from './components.js'
import type { Placement, Task } from '../../protocols/task/index.js'
import type { PeerId } from '@libp2p/interface'

export interface Pulled {
  found: number
  /** an answer was cut at the limit asked: more wait there */
  full: boolean
  /** how many of the tasks found `consider` took (this node claims them) */
  taken: number
  /** in how many ms the first task the local list left out as too young (pullMinAgeMs) comes of age, if one was */
  youngDueInMs?: number
}

/**
 * The pull path: asks a few peers (and the local replica) for tasks they would lease now, and
 * hands each to `consider`. Gossip drops messages; this is how a task it dropped is still run.
 * Answers what it found (Pulled); undefined when it asked nobody (no slot free for anything this
 * node runs).
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
  let found = 0
  let full = false
  let taken = 0
  // each list is taken as it comes: the local one at once, not after the slowest peer's answer
  // (slots idled through the peers' round trips while a backlog waited in this node's own store)
  const take = async (list: Promise<unknown[]>): Promise<void> => {
    let items: unknown[]
    try {
      items = await list
    } catch {
      return // a peer that did not answer: the others' lists and the next pull stand in
    }
    if (items.length >= limit) full = true
    for (const item of items) {
      // a peer's answer is input like any other: a forged task is dropped
      const parsed = claimableSchema.safeParse(item)
      if (!parsed.success || !hasValidId(parsed.data.task)) continue
      stats.pulledTasks++
      found++
      if (await consider(parsed.data.task, parsed.data.placement)) taken++
    }
  }
  const askPeer = async (peer: PeerId): Promise<unknown[]> => (await c.records(peer, { op: 'pending', capabilities, limit, minAgeMs }))?.tasks as unknown[] ?? []
  const young: { inMs?: number } = {}
  const takes = await Promise.allSettled([take(c.replica.claimable(new Set(capabilities), limit, minAgeMs, young)), ...picked.map(async peer => { await take(askPeer(peer)) })])
  // a failed claim's own errors are the claimer's; one from considering (the store) fails the round
  for (const t of takes) if (t.status === 'rejected') throw t.reason
  return { found, full, taken, youngDueInMs: young.inMs }
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
