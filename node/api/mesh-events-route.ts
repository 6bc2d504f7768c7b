import { TASK_STATES } from '../../protocols/task/index.js'
import { badRequest } from './http.js'
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
  peer?: string
  error?: string
}

/**
 * GET /v1/events?capability=&state=: the mesh's task state changes as they happen, on any node.
 * While a stream is open the node joins the mesh's watch topic, on which every peer tells its
 * submits, claims and completions (only when someone watches: the topic has subscribers); failures,
 * dead letters, cancels and redrives come from the results topic every node follows. Not a replay:
 * it starts now, and gossip may drop a change (a task's own stream, /v1/tasks/:id/events, does not).
 */
export function meshEventsRoute (tasks: TaskLayer): RouteOptions {
  return {
    method: 'GET',
    url: '/v1/events',
    handler: async (request, reply) => {
      const query = request.query as Record<string, unknown>
      const capability = typeof query.capability === 'string' && query.capability !== '' ? query.capability : undefined
      const state = typeof query.state === 'string' && query.state !== '' ? query.state : undefined
      if (state !== undefined && !(TASK_STATES as readonly string[]).includes(state)) throw badRequest('invalid-query', `state is one of ${TASK_STATES.join(', ')} (blocked is not a change: list it with /v1/tasks?state=blocked)`)
      const stream = openStream(reply)
      let seq = 0
      const seen = new Set<string>()
      const emit = (c: StateChange): void => {
        if ((capability !== undefined && c.capability !== capability) || (state !== undefined && c.state !== state)) return
        const key = `${c.id}:${c.generation}:${c.state}:${c.peer ?? ''}`
        if (seen.has(key)) return
        seen.add(key)
        if (seen.size > SEEN_PER_STREAM) seen.delete(seen.values().next().value as string)
        stream.write(sse({ id: String(++seq), event: 'state', data: { ...c } }))
      }
      const me = tasks.components.peerId.toString()
      const fromNotice = (n: TaskNotice): void => {
        emit({ id: n.id, capability: n.capability, state: n.event === 'redriven' || n.event === 'submitted' ? 'pending' : n.event, generation: n.generation, ...(n.peer === undefined ? {} : { peer: n.peer }), ...(n.error === undefined ? {} : { error: n.error }) })
      }
      const local: Array<[string, (evt: CustomEvent<any>) => void]> = [
        ['submitted', (evt: CustomEvent<SubmittedEvent>) => { emit({ ...evt.detail, state: 'pending', generation: 0, peer: me }) }],
        ['claimed', (evt: CustomEvent<ClaimedEvent>) => { emit({ id: evt.detail.id, capability: evt.detail.capability, state: 'running', generation: evt.detail.generation, peer: me }) }],
        ['ran', (evt: CustomEvent<RanEvent>) => { if (evt.detail.outcome === 'completed') emit({ id: evt.detail.id, capability: evt.detail.capability, state: 'completed', generation: evt.detail.generation, peer: me }) }],
        ['notice', (evt: CustomEvent<TaskNotice>) => { fromNotice(evt.detail) }]
      ]
      const onWatch = (evt: CustomEvent<TaskNotice>): void => { fromNotice(evt.detail) }
      for (const [name, fn] of local) tasks.events.addEventListener(name as never, fn as never)
      tasks.gossip.addEventListener('watch', onWatch)
      tasks.gossip.watch(true)
      stream.onClose(() => {
        for (const [name, fn] of local) tasks.events.removeEventListener(name as never, fn as never)
        tasks.gossip.removeEventListener('watch', onWatch)
        tasks.gossip.watch(false)
      })
      stream.write(': listening\n\n')
    }
  }
}
