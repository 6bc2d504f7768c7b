import { TASK_STATES, capabilitySchema } from '../../protocols/task/index.js'
import { badRequest, refuseUnknownQuery } from './http.js'
import { openStream } from './sse-stream.js'
import { sse } from './task-feed.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { ClaimedEvent, RanEvent, SubmittedEvent } from '../tasks/events.js'
import type { TaskLayer } from '../tasks/task-layer.js'
import type { RouteOptions } from 'fastify'

/** State changes remembered per stream to drop the same one heard twice (here, and from a peer). */
const SEEN_PER_STREAM = 4_096

interface StateChange {
  id: string
  capability: string
  state: string
  generation: number
  /** the claim a running, completed or failed change is of (a retry by the same peer is another claim) */
  claimId?: string
  peer?: string
  error?: string
}

/** The states this stream tells: a task's wait for a signal is not told (its attempt shows as running), so a filter on it would never match. */
export const STREAMED_STATES: readonly string[] = TASK_STATES.filter(s => s !== 'waiting')

/**
 * GET /v1/events?capability=&state=: the mesh's task state changes as they happen, on any node.
 * While a stream is open the node joins the mesh's watch topic, on which every peer tells its
 * submits, claims and completions (only when someone watches: the topic has subscribers); failures,
 * dead letters, cancels and redrives come from the results topic every node follows. Not a replay:
 * it starts now, and gossip may drop a change (a task's own stream, /v1/tasks/:id/events, does not).
 */
export function meshEventsRoute (tasks: TaskLayer, maxBufferedBytes?: number): RouteOptions {
  return {
    method: 'GET',
    url: '/v1/events',
    handler: async (request, reply) => {
      const query = request.query as Record<string, unknown>
      // a misspelt filter (?stat=running) streamed every change, unfiltered
      refuseUnknownQuery(Object.keys(query), ['capability', 'state'], 'GET /v1/events')
      const capability = typeof query.capability === 'string' && query.capability !== '' ? query.capability : undefined
      const state = typeof query.state === 'string' && query.state !== '' ? query.state : undefined
      const badCapability = capability === undefined ? undefined : capabilitySchema.safeParse(capability).error
      // the rule's own words, as a submit and /v1/tasks say them
      if (badCapability !== undefined) throw badRequest('invalid-query', `${badCapability.issues[0]?.message ?? 'capability: malformed'} (a filter no task could match is a mistake)`)
      if (state !== undefined && !STREAMED_STATES.includes(state)) throw badRequest('invalid-query', `state is one of ${STREAMED_STATES.join(', ')} (blocked and waiting are not changes this stream carries: list them with /v1/tasks?state=blocked or /v1/tasks?state=waiting)`)
      const stream = openStream(reply, maxBufferedBytes)
      const seen = new Set<string>()
      const emit = (c: StateChange): void => {
        if ((capability !== undefined && c.capability !== capability) || (state !== undefined && c.state !== state)) return
        // the claim tells a retry's running or failed from the first's; a completion is certified once a
        // generation, and an older peer's watch notice of it names no claim while its direct notice does
        const claim = c.state === 'running' || c.state === 'failed' ? c.claimId ?? '' : ''
        const key = `${c.id}:${c.generation}:${c.state}:${c.peer ?? ''}:${claim}`
        if (seen.has(key)) return
        seen.add(key)
        if (seen.size > SEEN_PER_STREAM) seen.delete(seen.values().next().value as string)
        // the id names the change (the same on every node and stream), not a position: a count from 1
        // on each stream gave a reconnecting client ids it had seen, which one that drops repeats dropped
        stream.write(sse({ id: key, event: 'state', data: { ...c } }))
      }
      const ordered = pendingFirst(emit, tasks.options.watchReorderMs)
      const me = tasks.components.peerId.toString()
      const fromNotice = (n: TaskNotice): void => {
        ordered.add({ id: n.id, capability: n.capability, state: n.event === 'redriven' || n.event === 'submitted' ? 'pending' : n.event, generation: n.generation, ...(n.claimId === undefined ? {} : { claimId: n.claimId }), ...(n.peer === undefined ? {} : { peer: n.peer }), ...(n.error === undefined ? {} : { error: n.error }) })
      }
      const local: Array<[string, (evt: CustomEvent<any>) => void]> = [
        ['submitted', (evt: CustomEvent<SubmittedEvent>) => { ordered.add({ ...evt.detail, state: 'pending', generation: 0, peer: me }) }],
        ['claimed', (evt: CustomEvent<ClaimedEvent>) => { ordered.add({ id: evt.detail.id, capability: evt.detail.capability, state: 'running', generation: evt.detail.generation, claimId: evt.detail.claimId, peer: me }) }],
        ['ran', (evt: CustomEvent<RanEvent>) => { if (evt.detail.outcome === 'completed') ordered.add({ id: evt.detail.id, capability: evt.detail.capability, state: 'completed', generation: evt.detail.generation, claimId: evt.detail.claimId, peer: me }) }],
        ['notice', (evt: CustomEvent<TaskNotice>) => { fromNotice(evt.detail) }]
      ]
      const onWatch = (evt: CustomEvent<TaskNotice>): void => { fromNotice(evt.detail) }
      for (const [name, fn] of local) tasks.events.addEventListener(name as never, fn as never)
      tasks.gossip.addEventListener('watch', onWatch)
      tasks.gossip.watch(true)
      stream.onClose(() => {
        ordered.stop()
        for (const [name, fn] of local) tasks.events.removeEventListener(name as never, fn as never)
        tasks.gossip.removeEventListener('watch', onWatch)
        tasks.gossip.watch(false)
      })
      stream.write(': listening\n\n')
    }
  }
}

/**
 * A new task's pending comes from its submitter and its running from the peer that runs it, and
 * the two can arrive the other way round (a task handed to a member is claimed before the submit
 * is answered). A task's first changes wait up to `holdMs` for its pending, then go out in order;
 * a task whose pending this stream never gets (submitted before it opened) is late by `holdMs` once.
 */
function pendingFirst (emit: (c: StateChange) => void, holdMs: number): { add: (c: StateChange) => void, stop: () => void } {
  const held = new Map<string, { changes: StateChange[], timer: ReturnType<typeof setTimeout> }>()
  /** tasks whose first changes went out: the rest of theirs is not held */
  const started = new Set<string>()
  const release = (id: string): void => {
    const h = held.get(id)
    held.delete(id)
    clearTimeout(h?.timer)
    for (const c of h?.changes ?? []) emit(c)
  }
  const start = (id: string): void => {
    started.add(id)
    if (started.size > SEEN_PER_STREAM) started.delete(started.values().next().value as string)
  }
  return {
    add: c => {
      if (c.state === 'pending') {
        start(c.id)
        emit(c)
        release(c.id)
        return
      }
      const h = held.get(c.id)
      if (h !== undefined) h.changes.push(c)
      else if (started.has(c.id) || holdMs === 0 || c.generation > 0) emit(c)
      else {
        start(c.id)
        held.set(c.id, { changes: [c], timer: setTimeout(() => { release(c.id) }, holdMs) })
      }
    },
    stop: () => { for (const h of held.values()) clearTimeout(h.timer); held.clear() }
  }
}
