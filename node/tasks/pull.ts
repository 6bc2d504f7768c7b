import { claimableSchema } from '../../protocols/records/index.js'
import { hasValidId } from '../../protocols/task/index.js'
import type { TaskComponents } from './components.js'
import type { Placement, Task } from '../../protocols/task/index.js'

/**
 * The pull path: asks a few peers (and the local replica) for tasks they would lease now, and
 * hands each to `consider`. Gossip drops messages; this is how a task it dropped is still run.
 * Answers how many tasks it found; undefined when it asked nobody (no slot free for anything this node runs).
 */
export async function pullTasks (c: TaskComponents, stats: { pulledTasks: number }, consider: (task: Task, placement: Placement) => Promise<void>): Promise<number | undefined> {
  const free = c.runtime.freeSlots()
  // only what this node could run now: asking for more only makes claims that fail
  const capabilities = c.runtime.capabilities().map(cap => cap.name).filter(name => (free[name] ?? 0) > 0)
  const limit = Math.max(0, ...capabilities.map(name => free[name] ?? 0))
  if (capabilities.length === 0 || limit === 0) return undefined
  const others = c.presence.live().filter(p => !p.self)
  const picked = shuffle(others).slice(0, c.options.pullPeers).map(p => c.replicaSets.peerId(p.peerId))
  const minAgeMs = c.options.pullMinAgeMs
  const lists = await Promise.allSettled([
    c.replica.claimable(new Set(capabilities), limit, minAgeMs),
    ...picked.map(async peer => (await c.records(peer, { op: 'pending', capabilities, limit, minAgeMs }))?.tasks as unknown[] ?? [])
  ])
  let found = 0
  for (const list of lists) {
    if (list.status !== 'fulfilled') continue
    for (const item of list.value) {
      // a peer's answer is input like any other: a forged task is dropped
      const parsed = claimableSchema.safeParse(item)
      if (!parsed.success || !hasValidId(parsed.data.task)) continue
      stats.pulledTasks++
      found++
      await consider(parsed.data.task, parsed.data.placement)
    }
  }
  return found
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
