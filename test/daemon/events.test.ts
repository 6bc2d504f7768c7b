import { setTimeout as delay } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { failAgent } from '../../node/agents/basic.js'
import { ApiServer } from '../../node/api/server.js'
import { sse } from '../../node/api/task-feed.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'

interface Sse { id?: string, event: string, data: any }

/** Reads server-sent events until `stop` says so or the stream ends; fails past the deadline. */
async function readEvents (url: string, stop: (events: Sse[]) => boolean, headers: Record<string, string> = {}, timeoutMs = 20_000, onOpen?: () => Promise<void>): Promise<{ events: Sse[], type: string | null }> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`no end of the stream ${url} within ${timeoutMs} ms`)), timeoutMs)
  const res = await fetch(url, { headers, signal: controller.signal })
  await onOpen?.()
  const events: Sse[] = []
  let buffer = ''
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += Buffer.from(chunk).toString('utf8')
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const fields = Object.fromEntries(block.split('\n').filter(l => !l.startsWith(':')).map(l => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]))
        if (fields.event !== undefined) events.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data ?? 'null') })
      }
      if (stop(events)) break
    }
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
  return { events, type: res.headers.get('content-type') }
}

/** Reports three steps a little apart, then returns its input reversed. */
const stepsAgent: Agent<string> = {
  name: 'steps',
  capabilities: [{ name: 'steps' }],
  run: async ctx => {
    for (let i = 1; i <= 3; i++) {
      ctx.progress({ step: i })
      await delay(100)
    }
    return [...ctx.input].reverse().join('')
  }
}

/** Reports two steps in each run; its first run then fails. */
const twiceAgent: Agent<null> = {
  name: 'twice',
  capabilities: [{ name: 'twice' }],
  run: async ctx => {
    for (let i = 1; i <= 2; i++) ctx.progress({ run: ctx.attempt, step: i })
    if (ctx.attempt === 1) throw new Error('first run fails')
    return 'done'
  }
}

/** The winning claim's story: on a busy machine a lease can lapse and a second claim run, which adds events but not these. */
function outline (events: Sse[]): Sse[] {
  const winner = events.find(e => e.event === 'completed')?.data.claimId
  return events.filter(e => !['claimed', 'progress'].includes(e.event) || e.data.claimId === winner)
}

describe('server-sent events of tasks and of the mesh', () => {
  let net: Testnet
  const apis: ApiServer[] = []
  // node 0 runs the agents; node 1 takes the submits, as a user's own node would; node 2 only watches
  beforeAll(async () => {
    // a watch stream holds a task's running for its pending, which a busy machine may deliver late
    net = await createTestnet(3, { perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 2_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, eventsPollMs: 200, watchReorderMs: 2_000, agents: i === 0 ? [stepsAgent, failAgent, twiceAgent] : [] } }) })
    await net.ready()
    for (const node of net.nodes) apis.push(await ApiServer.listen(node, { port: 0 }))
  })
  afterAll(async () => {
    await Promise.allSettled(apis.map(async a => a.close()))
    await net?.stop()
  })

  const submit = async (body: unknown): Promise<string> => {
    const res = await fetch(`${apis[1]!.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return (await res.json()).id
  }

  it('streams one task from its submit to its result, progress included, and resumes after Last-Event-ID', async () => {
    const id = await submit({ capability: 'steps', input: 'mesh' })
    const { events, type } = await readEvents(`${apis[1]!.url}/v1/tasks/${id}/events`, () => false)
    expect(type).toMatch(/^text\/event-stream/)
    const story = outline(events)
    expect(story.map(e => e.event)).toEqual(['submitted', 'claimed', 'progress', 'progress', 'progress', 'completed'])
    expect(story[1]?.data).toMatchObject({ id, peer: net.nodes[0]!.peerId.toString() })
    expect(story.filter(e => e.event === 'progress').map(e => e.data.event)).toEqual([{ step: 1 }, { step: 2 }, { step: 3 }])
    expect(events.at(-1)?.data).toMatchObject({ id, result: 'hsem', executor: net.nodes[0]!.peerId.toString() })
    expect(new Set(events.map(e => e.id)).size).toBe(events.length)
    // resumed after the winning claim: its progress and the result again, nothing before
    const resumed = await readEvents(`${apis[1]!.url}/v1/tasks/${id}/events`, () => false, { 'last-event-id': story[1]!.id! })
    expect(outline(resumed.events).map(e => e.event)).toEqual(['progress', 'progress', 'progress', 'completed'])
    // resumed after a progress event: the rest of it only
    const later = await readEvents(`${apis[1]!.url}/v1/tasks/${id}/events`, () => false, { 'last-event-id': story[3]!.id! })
    expect(outline(later.events).map(e => e.event)).toEqual(['progress', 'completed'])
    // any node tells the same events with the same ids, the progress too (asked of the submitter)
    for (const i of [0, 2]) {
      const elsewhere = await readEvents(`${apis[i]!.url}/v1/tasks/${id}/events`, () => false)
      expect(outline(elsewhere.events).map(e => e.id)).toEqual(story.map(e => e.id))
    }
  })

  it('tells each run\'s progress between its start and its end on every node, and a resumed stream sends no earlier run\'s progress again', async () => {
    const id = await submit({ capability: 'twice', input: null, maxAttempts: 3 })
    const { events } = await readEvents(`${apis[1]!.url}/v1/tasks/${id}/events`, () => false, {}, 30_000)
    expect(events.at(-1)?.event).toBe('completed')
    const runs = events.filter(e => e.event === 'claimed').map(e => e.data.claimId)
    expect(runs).toHaveLength(2)
    // the story by claim, in order: each run's progress after its start and before how it ended
    const told = (list: Sse[]): string[] => list.map(e => `${e.event}${e.data.claimId === undefined ? '' : `@${runs.indexOf(e.data.claimId as string)}`}`)
    const story = ['submitted', 'claimed@0', 'progress@0', 'progress@0', 'attempt-failed@0', 'claimed@1', 'progress@1', 'progress@1', 'completed@1']
    expect(told(events)).toEqual(story)
    // the same on a node that neither submitted nor ran it (its progress is asked of the submitter: before, it came after the run's end)
    expect(told((await readEvents(`${apis[2]!.url}/v1/tasks/${id}/events`, () => false, {}, 30_000)).events)).toEqual(story)
    // resumed after the first run's end, or the second run's start: none of the first run's progress again
    const after = async (lastId: string): Promise<string[]> => told((await readEvents(`${apis[1]!.url}/v1/tasks/${id}/events`, () => false, { 'last-event-id': lastId }, 30_000)).events)
    expect(await after(events[4]!.id!)).toEqual(story.slice(5))
    expect(await after(events[5]!.id!)).toEqual(story.slice(6))
  })

  it('tells each failed attempt with its error, and the last error with the dead outcome', async () => {
    const id = await submit({ capability: 'fail', input: { times: 5, message: 'out of coffee' }, maxAttempts: 2 })
    const { events } = await readEvents(`${apis[1]!.url}/v1/tasks/${id}/events`, () => false, {}, 30_000)
    expect(events[0]?.event).toBe('submitted')
    expect(events.filter(e => e.event === 'claimed')).toHaveLength(2)
    // each claim ends as failed (or, on a member that missed the report, expired by the certified outcome)
    expect(events.filter(e => e.event === 'attempt-failed' || e.event === 'attempt-expired')).toHaveLength(2)
    expect(events.find(e => e.event === 'attempt-failed')?.data.error).toBe('out of coffee')
    expect(events.at(-1)).toMatchObject({ event: 'dead', data: { reason: expect.stringMatching(/failed 2 of 2/), lastError: expect.stringMatching(/out of coffee/) } })
  })

  it('streams the mesh\'s state changes on a node that neither submits nor runs them, filtered by capability', async () => {
    let id = ''
    // submitted once the stream answered, and once the watcher's subscription reached the others
    const watcher = net.nodes[2]!.peerId
    const { events } = await readEvents(`${apis[2]!.url}/v1/events?capability=steps`, events => events.some(e => e.data.id === id && e.data.state === 'completed'), {}, 30_000, async () => {
      await waitFor(() => [0, 1].every(i => net.nodes[i]!.libp2p.services.pubsub.getSubscribers('agentmesh/default/watch').some(p => p.equals(watcher))), { what: 'the watch subscription to reach the other nodes' })
      id = await submit({ capability: 'steps', input: 'again' })
      await submit({ capability: 'fail', input: { times: 0 } })
    })
    expect(events.every(e => e.event === 'state' && e.data.capability === 'steps')).toBe(true)
    const states = events.filter(e => e.data.id === id)
    expect(states.map(e => e.data.state)).toEqual(['pending', 'running', 'completed'])
    // each id names its change, the same on any node and stream (not a count from 1): the claim is
    // in it, so a retry by the same peer is another change
    const claim = states[1]?.data.claimId as string
    expect(claim).toMatch(/^[0-9a-f]{16}$/)
    expect(states.map(e => e.data.claimId)).toEqual([undefined, claim, claim])
    expect(states.map(e => e.id)).toEqual([`${id}:0:pending:${states[0]?.data.peer}:`, `${id}:0:running:${states[1]?.data.peer}:${claim}`, `${id}:0:completed:${states[2]?.data.peer}:`])
    expect(states[0]?.data.peer).toBe(net.nodes[1]!.peerId.toString())
    expect(states[1]?.data.peer).toBe(net.nodes[0]!.peerId.toString())
  })

  it('tells a node\'s own watchers of the changes it publishes itself: the dead task it ran, the cancel it made', async () => {
    // gossipsub does not deliver a node's own message back to it: node 0 runs the task and tells
    // its death, node 1 cancels; each one's own stream must still show it
    let dead = ''
    const ran = await readEvents(`${apis[0]!.url}/v1/events?capability=fail`, events => events.some(e => e.data.id === dead && e.data.state === 'dead'), {}, 30_000, async () => {
      dead = await submit({ capability: 'fail', input: { times: 5, unrecoverable: true } })
    })
    expect(ran.events.find(e => e.data.id === dead && e.data.state === 'dead')?.data).toMatchObject({ peer: net.nodes[0]!.peerId.toString() })
    let canceled = ''
    const made = await readEvents(`${apis[1]!.url}/v1/events?capability=nobody.runs`, events => events.some(e => e.data.id === canceled && e.data.state === 'canceled'), {}, 30_000, async () => {
      canceled = await submit({ capability: 'nobody.runs', input: 1 })
      expect((await fetch(`${apis[1]!.url}/v1/tasks/${canceled}/cancel`, { method: 'POST' })).status).toBe(200)
    })
    expect(made.events.filter(e => e.data.id === canceled).map(e => e.data.state)).toEqual(['pending', 'canceled'])
  })

  it('tells a redrive in a task\'s stream, and resumes after the outcome a client saw before it', async () => {
    const id = await submit({ capability: 'fail', input: { times: 5, unrecoverable: true } })
    const first = await readEvents(`${apis[2]!.url}/v1/tasks/${id}/events`, events => events.some(e => e.event === 'dead'))
    const sawDead = first.events.find(e => e.event === 'dead')?.id as string
    expect(sawDead).toBe('final:0')
    // a field the route does not take is refused, not ignored: the redrive would not have raised the budget
    const json = { method: 'POST', headers: { 'content-type': 'application/json' } }
    const withField = await fetch(`${apis[1]!.url}/v1/deadletter/${id}/redrive`, { ...json, body: '{"maxAttempts":5}' })
    expect({ status: withField.status, body: await withField.json() }).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/takes no body.*"maxAttempts"/) } } })
    expect((await fetch(`${apis[1]!.url}/v1/tasks/${id}/cancel`, { ...json, body: '{"bogus":1}' })).status).toBe(400)
    // what generated clients send: an empty body or null with the JSON content-type (a dead task: its state, or 409; not a 400)
    for (const body of ['', 'null']) expect([200, 409], JSON.stringify(body)).toContain((await fetch(`${apis[1]!.url}/v1/tasks/${id}/cancel`, { ...json, body })).status)
    expect((await (await fetch(`${apis[1]!.url}/v1/tasks/${id}`)).json()).state).toBe('dead')
    expect((await fetch(`${apis[1]!.url}/v1/deadletter/${id}/redrive`, { ...json, body: '{}' })).status).toBe(200)
    await waitFor(async () => (await (await fetch(`${apis[1]!.url}/v1/tasks/${id}`)).json()).state === 'dead', { what: 'the redriven task to die again', timeoutMs: 30_000 })
    // a client back with the last id it saw gets only the second run, not the whole history again
    const resumed = await readEvents(`${apis[2]!.url}/v1/tasks/${id}/events`, events => events.some(e => e.event === 'dead'), { 'last-event-id': sawDead })
    expect(resumed.events.map(e => e.event)).toEqual(['claimed', 'attempt-failed', 'dead'])
    expect(resumed.events.every(e => e.data.generation === 1)).toBe(true)
    // a fresh stream tells the two runs apart
    const fresh = await readEvents(`${apis[0]!.url}/v1/tasks/${id}/events`, events => events.some(e => e.event === 'dead'))
    expect(fresh.events.map(e => e.event)).toEqual(['submitted', 'claimed', 'attempt-failed', 'redriven', 'claimed', 'attempt-failed', 'dead'])
    expect(fresh.events.find(e => e.event === 'redriven')).toMatchObject({ id: 'final:0', data: { generation: 1 } })
  })

  it('writes an event id a peer chose as one plain line: no event of its own can be slipped into a stream', () => {
    const forged = sse({ id: 'x\nevent: completed\ndata: {"result":"forged"}\n\nid: y:claimed', event: 'claimed', data: { ok: true } })
    expect(forged.split('\n').filter(l => l.startsWith('event:'))).toEqual(['event: claimed'])
    expect(forged).not.toContain('forged"}\n')
  })

  it('answers an unknown task with 404 and a malformed id with 400, before any stream', async () => {
    expect((await fetch(`${apis[1]!.url}/v1/tasks/${'a'.repeat(64)}/events`)).status).toBe(404)
    expect((await fetch(`${apis[1]!.url}/v1/tasks/nope/events`)).status).toBe(400)
    expect((await fetch(`${apis[1]!.url}/v1/events?state=sleeping`)).status).toBe(400)
    // as is a capability no task could have, which would be a stream that never tells anything
    const badCapability = await fetch(`${apis[1]!.url}/v1/events?capability=bad%20cap!`)
    expect(badCapability.status).toBe(400)
    expect(((await badCapability.json()) as any).error.message).toMatch(/capability/)
    // a state the stream never tells is refused, not a filter that never matches
    const waiting = await fetch(`${apis[1]!.url}/v1/events?state=waiting`)
    expect(waiting.status).toBe(400)
    expect(((await waiting.json()) as any).error.message).toMatch(/\/v1\/tasks\?state=waiting/)
    // a misspelt filter is refused, not a stream of every change unfiltered
    const misspelt = await fetch(`${apis[1]!.url}/v1/events?stat=running`)
    expect(misspelt.status).toBe(400)
    expect(((await misspelt.json()) as any).error.message).toMatch(/unknown query parameter "stat": GET \/v1\/events takes capability, state/)
    const oneTask = await fetch(`${apis[1]!.url}/v1/tasks/${'a'.repeat(64)}/events?foo=1`)
    expect(oneTask.status).toBe(400)
    expect(((await oneTask.json()) as any).error.message).toMatch(/unknown query parameter "foo": GET \/v1\/tasks\/:id\/events takes none/)
  })
})

describe('a task\'s progress when its submitter is gone', () => {
  let net: Testnet | undefined
  let api: ApiServer | undefined
  afterAll(async () => {
    await api?.close()
    await net?.stop()
  })

  it('streams on another node from the node that runs it', async () => {
    let stop = (): void => {}
    const submitterStopped = new Promise<void>(resolve => { stop = resolve })
    const slowSteps: Agent<null> = {
      name: 'slow.steps',
      capabilities: [{ name: 'slow.steps' }],
      run: async ctx => {
        // the submitter is gone before the first event
        await submitterStopped
        for (let i = 1; i <= 3; i++) ctx.progress({ step: i })
        return 'done'
      }
    }
    net = await createTestnet(3, { perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 2_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, eventsPollMs: 200, agents: i === 0 ? [slowSteps] : [] } }) })
    await net.ready()
    const [runner, submitter] = [net.nodes[0]!, net.nodes[1]!]
    api = await ApiServer.listen(net.nodes[2]!, { port: 0 })
    const { id } = await submitter.tasks!.service.submit({ capability: 'slow.steps', input: null })
    await submitter.stop()
    stop()
    await runner.tasks!.service.waitFor(id, 30_000)
    const { events } = await readEvents(`${api.url}/v1/tasks/${id}/events`, () => false, {}, 30_000)
    // before, the runner's events went only to the submitter: no progress anywhere
    expect(events.filter(e => e.event === 'progress').map(e => e.data.event)).toEqual([{ step: 1 }, { step: 2 }, { step: 3 }])
    expect(events.at(-1)?.event).toBe('completed')
  })
})
