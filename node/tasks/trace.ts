import { peerIdFromString } from '@libp2p/peer-id'
import type { TaskComponents } from './components.js'
import type { TaskService } from './task-service.js'
import { TASK_ID } from '../../protocols/task/index.js'
import type { TaskRecord } from '../../protocols/task/index.js'

/** How deep and how wide a trace is followed: subtasks of subtasks, bounded. */
export const TRACE_MAX_DEPTH = 6
export const TRACE_MAX_TASKS = 500

export interface TracedTask {
  record: TaskRecord
  depth: number
}

/**
 * A task and its subtasks, from the records alone (no collector): each task read from its
 * placement, its subtasks found on this node and on every peer that ran an attempt of it (the peer
 * that runs a task submits its subtasks, so it keeps their records). Depth first, children by
 * submit time: the order a timeline prints.
 */
export async function traceTask (c: TaskComponents, service: TaskService, rootId: string): Promise<TracedTask[]> {
  const me = c.peerId.toString()
  const out: TracedTask[] = []
  const seen = new Set<string>()
  const visit = async (id: string, depth: number): Promise<void> => {
    if (seen.has(id) || out.length >= TRACE_MAX_TASKS) return
    seen.add(id)
    const view = await service.find(id, { complete: true, skipSilent: true, absentByMajority: true })
    if (view === undefined) return
    out.push({ record: view.record, depth })
    if (depth >= TRACE_MAX_DEPTH) return
    const children = new Set(c.replica.childrenOf(id))
    const runners = [...new Set(view.record.attempts.map(a => a.peer))].filter(p => p !== me && p !== '')
    const answers = await Promise.allSettled(runners.map(async peer => c.records(peerIdFromString(peer), { op: 'children', id })))
    // a peer's answer is input like any other: ids checked, and no more than the trace has room for
    for (const a of answers) if (a.status === 'fulfilled' && Array.isArray(a.value?.ids)) for (const child of a.value.ids) if (typeof child === 'string' && TASK_ID.test(child)) children.add(child)
    const room = [...children].filter(child => !seen.has(child)).slice(0, Math.max(0, TRACE_MAX_TASKS - out.length))
    const records = (await Promise.all(room.map(async child => (await service.find(child))?.record))).filter((r): r is TaskRecord => r !== undefined && r.task.parent === id)
    for (const r of records.sort((a, b) => a.task.createdAt - b.task.createdAt)) await visit(r.task.id, depth + 1)
  }
  await visit(rootId, 0)
  return out
}
