import { peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { progressUpdateSchema } from '../../protocols/records/index.js'
import { TASK_ID } from '../../protocols/task/index.js'
import { HttpError, badRequest, httpErrorBy, refuseUnknownQuery } from './http.js'
import { openStream } from './sse-stream.js'
import { isFinal, progressEvent, recordEvents, sse } from './task-feed.js'
import type { FeedEvent } from './task-feed.js'
import type { ProgressUpdate } from '../tasks/progress.js'
import type { TaskLayer } from '../tasks/task-layer.js'
import type { TaskView } from '../tasks/task-service.js'
import type { FastifyRequest, RouteOptions } from 'fastify'

/**
 * GET /v1/tasks/:id/events: one task's events as server-sent events, from its start, on any node.
 * The record (read from the placement every `eventsPollMs`, and at once on a notice) gives the
 * submit, each claim and how it ended, and the outcome; the node the task was submitted through
 * also streams the executing peer's progress and tokens. `Last-Event-ID` resumes after that event.
 * The stream ends after the outcome.
 */
export function taskEventsRoute (tasks: TaskLayer, maxBufferedBytes?: number): RouteOptions {
  return {
    method: 'GET',
    url: '/v1/tasks/:id/events',
    handler: async (request, reply) => {
      const id = (request.params as { id?: string }).id
      if (id === undefined || !TASK_ID.test(id)) throw badRequest('invalid-id', 'a task id is 64 lowercase hex digits')
      refuseUnknownQuery(Object.keys(request.query as Record<string, unknown>), [], 'GET /v1/tasks/:id/events')
      const first = await tasks.service.find(id, { complete: true, skipSilent: true, absentByMajority: true }).catch(httpErrorBy({ QuorumUnavailableError: [503, 'QUORUM_UNAVAILABLE'] }, () => tasks.options.retryAfterMs))
      if (first === undefined) throw new HttpError(404, 'NOT_FOUND', `task ${id} is not known to its placement`)
      const after = lastEventId(request)
      const stream = openStream(reply, maxBufferedBytes)
      const sent = new Set<string>()
      /** claims whose progress the client saw, all of it: their events are not sent again */
      const covered = new Set<string>()
      // resuming: the client saw every event up to its last id in the record's order; after a
      // progress event, everything up to that event's claim
      if (after !== undefined) {
        const earlier = recordEvents(first)
        const resumedClaim = /^(.*):p\d+$/.exec(after)?.[1]
        const at = earlier.findIndex(e => e.id === after || (resumedClaim !== undefined && e.id === `${resumedClaim}:claimed`))
        const seen = earlier.slice(0, at + 1)
        for (const e of seen) sent.add(e.id)
        // a claim's progress comes between its start and what follows it, so a client that saw
        // something after a claim's start saw all its progress (before, an earlier run's progress,
        // or a dead generation's, was sent again)
        for (const e of seen.slice(0, -1)) if (e.event === 'claimed') covered.add(String(e.data.claimId))
      }
      // progress can arrive before the poll that shows its claim: held until the claim is told
      const held: FeedEvent[] = []
      const send = (e: FeedEvent): void => {
        if (sent.has(e.id)) return
        sent.add(e.id)
        stream.write(sse(e))
        if (e.event === 'claimed') for (const p of held.splice(0)) if (p.data.claimId === e.data.claimId) send(p); else held.push(p)
      }
      let wake: () => void = () => {}
      stream.onClose(() => { wake() })
      const onNotice = (evt: CustomEvent<{ id: string }>): void => { if (evt.detail.id === id) wake() }
      tasks.events.addEventListener('notice', onNotice)
      // progress of attempts before the resumed one is skipped with them: by sequence within a claim
      const onProgress = (u: ProgressUpdate): void => {
        const key = `${u.claimId}:p${u.seq}`
        if (sent.has(key) || covered.has(u.claimId) || isResumedPast(after, u.claimId, u.seq) || held.some(h => h.id === key)) return
        if (sent.has(`${u.claimId}:claimed`)) return send(progressEvent(u))
        if (held.length < tasks.options.progressEventsPerTask) held.push(progressEvent(u))
        wake()
      }
      const unsubscribe = tasks.progress.subscribe(id, onProgress)
      let view = first
      const pullProgress = remoteProgress(tasks, first.record.task.submitter, id, onProgress, () => runnersOf(view))
      try {
        while (!stream.isClosed()) {
          // the submitter's progress first, held until its claim is told: a run's progress then comes
          // before how the run ended, as on the submitter's own stream (after it, on other nodes), and
          // ahead of the outcome
          await pullProgress()
          const events = recordEvents(view)
          for (const e of events) if (!isFinal(e)) send(e)
          const final = events.find(isFinal)
          // completed, but the result has not reached this node yet: the next poll brings it
          if (final !== undefined && (final.event !== 'completed' || view.result !== undefined)) {
            send(final)
            break
          }
          stream.write(': waiting\n\n')
          await new Promise<void>(resolve => {
            const timer = setTimeout(resolve, tasks.options.eventsPollMs)
            wake = () => { clearTimeout(timer); resolve() }
            if (stream.isClosed()) wake()
          })
          if (stream.isClosed()) break
          view = await tasks.service.find(id, { complete: true, skipSilent: true }) ?? view
        }
      } finally {
        unsubscribe()
        tasks.events.removeEventListener('notice', onNotice)
        stream.end()
      }
    }
  }
}

/** The peers that ran the task's attempts, the latest first. */
function runnersOf (view: TaskView): string[] {
  return [...new Set(view.record.attempts.filter(a => a.outcome !== 'released').map(a => a.peer).reverse())]
}

/**
 * Progress goes to the submitter: a stream on another node asks it at each poll for what came
 * after the last event it got (answers are capped in bytes, so a long stream comes in pieces).
 * When the submitter does not answer, the nodes that ran the task are asked: each keeps its own
 * runs' progress (before, a dead submitter's tasks streamed no progress anywhere).
 */
function remoteProgress (tasks: TaskLayer, submitter: string, id: string, onProgress: (u: ProgressUpdate) => void, runners: () => string[]): () => Promise<void> {
  const me = tasks.components.peerId.toString()
  if (submitter === me) return async () => {}
  const since = new Map<string, { claimId: string, seq: number }>()
  /** asks one peer for what came after what it told before; false when it did not answer */
  const ask = async (from: string): Promise<boolean> => {
    for (let round = 0; round < 8; round++) {
      const after = since.get(from)
      let answer: unknown
      try {
        answer = await tasks.components.records(peerIdFromString(from), { op: 'progress-recent', id, ...(after === undefined ? {} : { since: after }) })
      } catch {
        return false
      }
      const parsed = z.object({ events: z.array(progressUpdateSchema).max(10_000), more: z.boolean().optional() }).safeParse(answer)
      if (!parsed.success) return false
      for (const u of parsed.data.events) {
        if (u.id !== id) continue
        onProgress(u as ProgressUpdate)
        since.set(from, { claimId: u.claimId, seq: u.seq })
      }
      if (parsed.data.more !== true) return true
    }
    return true
  }
  return async () => {
    if (await ask(submitter)) return
    for (const peer of runners()) if (peer !== me && peer !== submitter) await ask(peer)
  }
}

function lastEventId (request: FastifyRequest): string | undefined {
  const header = request.headers['last-event-id']
  const value = Array.isArray(header) ? header[0] : header
  return value === undefined || value === '' ? undefined : value.slice(0, 200)
}

/** `CLAIM:pN` given as the last id: progress of that claim up to N was seen. */
function isResumedPast (after: string | undefined, claimId: string, seq: number): boolean {
  if (after === undefined) return false
  const m = /^(.*):p(\d+)$/.exec(after)
  return m !== null && m[1] === claimId && seq <= Number(m[2])
}
