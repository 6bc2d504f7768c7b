import { peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { progressUpdateSchema } from '../../protocols/records/index.js'
import { TASK_ID, TASK_STATES } from '../../protocols/task/index.js'
import { HttpError, badRequest } from './http.js'
import { isFinal, progressEvent, recordEvents, sse } from './task-feed.js'
import type { FeedEvent } from './task-feed.js'
import type { ProgressUpdate } from '../tasks/progress.js'
import type { TaskLayer } from '../tasks/task-layer.js'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'

/** Opens a server-sent event stream on the raw response; Fastify is told to leave it alone. */
function openStream (request: FastifyRequest, reply: FastifyReply): { write: (text: string) => void, closed: Promise<void>, isClosed: () => boolean } {
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' })
  res.flushHeaders()
  let closed = false
  const done = new Promise<void>(resolve => {
    const end = (): void => { closed = true; resolve() }
    request.raw.once('close', end)
    res.once('close', end)
  })
  return { write: text => { if (!closed) res.write(text) }, closed: done, isClosed: () => closed }
}

/**
 * GET /v1/tasks/:id/events: one task's events as server-sent events, from its start, on any node.
 * The record (read from the placement every `eventsPollMs`, and at once on a notice) gives the
 * submit, each claim and how it ended, and the outcome; the node the task was submitted through
 * also streams the executing peer's progress and tokens. `Last-Event-ID` resumes after that event.
 * The stream ends after the outcome.
 */
export function taskEventsRoute (tasks: TaskLayer): RouteOptions {
  return {
    method: 'GET',
    url: '/v1/tasks/:id/events',
    handler: async (request, reply) => {
      const id = (request.params as { id?: string }).id
      if (id === undefined || !TASK_ID.test(id)) throw badRequest('invalid-id', 'a task id is 64 lowercase hex digits')
      const first = await tasks.service.find(id)
      if (first === undefined) throw new HttpError(404, 'NOT_FOUND', `task ${id} is not known to its placement`)
      const after = lastEventId(request)
      const stream = openStream(request, reply)
      const sent = new Set<string>()
      // resuming: what the client saw is every event up to its last id, in the record's order
      if (after !== undefined) {
        const earlier = recordEvents(first)
        const at = earlier.findIndex(e => e.id === after)
        for (const e of earlier.slice(0, at + 1)) sent.add(e.id)
        if (after.includes(':p')) sent.add(after)
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
      const onNotice = (evt: CustomEvent<{ id: string }>): void => { if (evt.detail.id === id) wake() }
      tasks.events.addEventListener('notice', onNotice)
      // progress of attempts before the resumed one is skipped with them: by sequence within a claim
      const onProgress = (u: ProgressUpdate): void => {
        if (sent.has(`${u.claimId}:p${u.seq}`) || isResumedPast(after, u.claimId, u.seq) || held.some(h => h.id === `${u.claimId}:p${u.seq}`)) return
        if (sent.has(`${u.claimId}:claimed`)) return send(progressEvent(u))
        if (held.length < tasks.options.progressEventsPerTask) held.push(progressEvent(u))
        wake()
      }
      const unsubscribe = tasks.progress.subscribe(id, onProgress)
      // progress goes to the submitter: a stream on another node asks it at each poll
      const submitter = first.record.task.submitter
      const remote = submitter === tasks.components.peerId.toString() ? undefined : peerIdFromString(submitter)
      const pullProgress = async (): Promise<void> => {
        if (remote === undefined) return
        const answer = await tasks.components.records(remote, { op: 'progress-recent', id }).catch(() => undefined)
        const parsed = z.array(progressUpdateSchema).max(10_000).safeParse(answer?.events)
        if (parsed.success) for (const u of parsed.data) if (u.id === id) onProgress(u as ProgressUpdate)
      }
      try {
        let view = first
        while (!stream.isClosed()) {
          const events = recordEvents(view)
          for (const e of events) if (!isFinal(e)) send(e)
          // before the outcome: a stream's progress comes ahead of its result
          await pullProgress()
          const final = events.find(isFinal)
          if (final !== undefined) {
            send(final)
            break
          }
          stream.write(': waiting\n\n')
          await Promise.race([stream.closed, new Promise<void>(resolve => {
            const timer = setTimeout(resolve, tasks.options.eventsPollMs)
            wake = () => { clearTimeout(timer); resolve() }
          })])
          if (stream.isClosed()) break
          view = await tasks.service.find(id) ?? view
        }
      } finally {
        unsubscribe()
        tasks.events.removeEventListener('notice', onNotice)
        reply.raw.end()
      }
    }
  }
}

/**
 * GET /v1/events?capability=&state=: the task state changes this node hears of, as they happen:
 * tasks submitted through it, claims and runs here, and every notice (gossiped to the mesh, or
 * sent to it as a submitter). Not a replay: it starts now.
 */
export function meshEventsRoute (tasks: TaskLayer): RouteOptions {
  return {
    method: 'GET',
    url: '/v1/events',
    handler: async (request, reply) => {
      const query = request.query as Record<string, unknown>
      const capability = typeof query.capability === 'string' && query.capability !== '' ? query.capability : undefined
      const state = typeof query.state === 'string' && query.state !== '' ? query.state : undefined
      if (state !== undefined && !(TASK_STATES as readonly string[]).includes(state)) throw badRequest('invalid-query', `state is one of ${TASK_STATES.join(', ')}`)
      const stream = openStream(request, reply)
      let seq = 0
      const emit = (data: { id: string, capability: string, state: string, [k: string]: unknown }): void => {
        if ((capability !== undefined && data.capability !== capability) || (state !== undefined && data.state !== state)) return
        stream.write(sse({ id: String(++seq), event: 'state', data }))
      }
      const listeners: Array<[string, (evt: CustomEvent<any>) => void]> = [
        ['submitted', evt => { emit({ ...evt.detail, state: 'pending' }) }],
        ['claimed', evt => { emit({ id: evt.detail.id, capability: evt.detail.capability, state: 'running', attempt: evt.detail.attempt }) }],
        ['ran', evt => { if (evt.detail.outcome === 'completed') emit({ id: evt.detail.id, capability: evt.detail.capability, state: 'completed' }) }],
        ['notice', evt => {
          const n = evt.detail
          emit({ id: n.id, capability: n.capability, state: n.event === 'redriven' ? 'pending' : n.event, ...(n.peer === undefined ? {} : { peer: n.peer }), ...(n.error === undefined ? {} : { error: n.error }) })
        }]
      ]
      for (const [name, fn] of listeners) tasks.events.addEventListener(name as never, fn as never)
      stream.write(': listening\n\n')
      await stream.closed
      for (const [name, fn] of listeners) tasks.events.removeEventListener(name as never, fn as never)
      reply.raw.end()
    }
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
