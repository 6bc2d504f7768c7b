import { lastErrorOf } from '../../protocols/task/index.js'
import type { TaskView } from '../tasks/task-service.js'
import type { ProgressUpdate } from '../tasks/progress.js'

/** One server-sent event: its stable id (for Last-Event-ID), its name and its JSON data. */
export interface FeedEvent {
  id: string
  /** `state` is the mesh stream's one kind */
  event: 'submitted' | 'claimed' | 'attempt-failed' | 'attempt-expired' | 'attempt-suspended' | 'redriven' | 'progress' | 'completed' | 'dead' | 'canceled' | 'state'
  data: Record<string, unknown>
}

/**
 * The events of one task as its record tells them, oldest first: submitted, each attempt started
 * (claimed, by whom) and how it ended, then the certified outcome. Ids come from the content (the
 * claim, the generation), so the same event has the same id on every node and every read.
 */
export function recordEvents (view: TaskView): FeedEvent[] {
  const r = view.record
  const id = r.task.id
  const out: FeedEvent[] = [{ id: 'submitted', event: 'submitted', data: { id, capability: r.task.capability, submitter: r.task.submitter, at: r.task.createdAt, ...(r.task.parent === undefined ? {} : { parent: r.task.parent }) } }]
  /** failed and expired attempts so far, by generation: an attempt's number is one more, as its grant counts it */
  const failures = new Map<number, number>()
  // a redrive drops the dead generation's outcome from the record: each earlier generation ends in a
  // `redriven` event under the id its outcome had (`final:<g>`), so a client that saw that outcome
  // resumes after it, and a fresh stream tells the runs apart
  let generation = 0
  const redrivenUpTo = (next: number): void => {
    for (; generation < next; generation++) out.push({ id: `final:${generation}`, event: 'redriven', data: { id, generation: generation + 1, after: 'dead' } })
  }
  for (const a of r.attempts) {
    // a claim that fell short of a majority and was given back never ran: not an attempt
    if (a.outcome === 'released') continue
    redrivenUpTo(a.generation)
    // a claim that resumes a suspended one keeps its number, as ctx.attempt does: a wait is not a failure
    const n = (failures.get(a.generation) ?? 0) + 1
    if (a.outcome === 'failed' || a.outcome === 'expired') failures.set(a.generation, n)
    const base = { id, attempt: n, generation: a.generation, claimId: a.claimId, peer: a.peer }
    out.push({ id: `${a.claimId}:claimed`, event: 'claimed', data: { ...base, at: a.startedAt } })
    if (a.outcome === 'failed' || a.outcome === 'expired') {
      out.push({ id: `${a.claimId}:${a.outcome}`, event: `attempt-${a.outcome}`, data: { ...base, at: a.endedAt, ...(a.error === undefined ? {} : { error: a.error }) } })
    } else if (a.outcome === 'suspended') {
      // the record keeps the latest wait only: an earlier one's signal is not named
      const w = r.waiting?.claimId === a.claimId ? r.waiting : undefined
      out.push({ id: `${a.claimId}:suspended`, event: 'attempt-suspended', data: { ...base, at: a.endedAt, ...(w === undefined ? {} : { signal: w.name, until: w.until }) } })
    }
  }
  redrivenUpTo(r.generation)
  const f = r.final
  if (f !== undefined) {
    const base = { id, generation: f.generation, at: f.at }
    if (f.state === 'completed') {
      out.push({ id: `final:${f.generation}`, event: 'completed', data: { ...base, executor: f.peer, claimId: f.claimId, ...(view.result === undefined ? {} : { result: view.result.value }) } })
    } else {
      // a dead task's reason is the last attempt's error when it has one: "failed 3 of 3" alone says little
      const lastError = lastErrorOf(r)
      out.push({ id: `final:${f.generation}`, event: f.state, data: { ...base, reason: f.reason, ...(lastError === undefined ? {} : { lastError }) } })
    }
  }
  return out
}

export function progressEvent (u: ProgressUpdate): FeedEvent {
  return { id: `${u.claimId}:p${u.seq}`, event: 'progress', data: { id: u.id, attempt: u.attempt, ...(u.generation === undefined ? {} : { generation: u.generation }), claimId: u.claimId, peer: u.peer, seq: u.seq, at: u.at, event: u.event } }
}

/**
 * The wire form of one event. The data is one line (JSON has no raw newlines); the id comes from
 * claim ids peers chose, so anything but a plain id character is replaced: a line break in it would
 * let a peer write events of its own into a client's stream.
 */
export function sse (e: FeedEvent): string {
  return `id: ${e.id.replace(/[^A-Za-z0-9:._-]/g, '_')}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`
}

export function isFinal (e: FeedEvent): boolean {
  return e.event === 'completed' || e.event === 'dead' || e.event === 'canceled'
}
