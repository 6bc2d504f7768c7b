import { setTimeout as delay } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { failAgent } from '../../node/agents/basic.js'
import { ApiServer } from '../../node/api/server.js'
import { createTestnet } from '../../sim/testnet.js'
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

describe('server-sent events of tasks and of the mesh', () => {
  let net: Testnet
  const apis: ApiServer[] = []
  // node 0 runs the agents; node 1 takes the submits, as a user's own node would
  beforeAll(async () => {
    net = await createTestnet(2, { perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 2_000, claimLagLimitMs: 5_000, eventsPollMs: 200, agents: i === 0 ? [stepsAgent, failAgent] : [] } }) })
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
    expect(events.map(e => e.event)).toEqual(['submitted', 'claimed', 'progress', 'progress', 'progress', 'completed'])
    expect(events[1]?.data).toMatchObject({ id, attempt: 1, peer: net.nodes[0]!.peerId.toString() })
    expect(events.filter(e => e.event === 'progress').map(e => e.data.event)).toEqual([{ step: 1 }, { step: 2 }, { step: 3 }])
    expect(events.at(-1)?.data).toMatchObject({ id, result: 'hsem', executor: net.nodes[0]!.peerId.toString() })
    expect(new Set(events.map(e => e.id)).size).toBe(events.length)
    // resumed after the claim: the progress and the result again, nothing before
    const resumed = await readEvents(`${apis[1]!.url}/v1/tasks/${id}/events`, () => false, { 'last-event-id': events[1]!.id! })
    expect(resumed.events.map(e => e.event)).toEqual(['progress', 'progress', 'progress', 'completed'])
    // any node tells the same events with the same ids, the progress too (asked of the submitter)
    const elsewhere = await readEvents(`${apis[0]!.url}/v1/tasks/${id}/events`, () => false)
    expect(elsewhere.events.map(e => e.id)).toEqual(events.map(e => e.id))
  })

  it('tells each failed attempt with its error, and the last error with the dead outcome', async () => {
    const id = await submit({ capability: 'fail', input: { times: 5, message: 'out of coffee' }, maxAttempts: 2 })
    const { events } = await readEvents(`${apis[1]!.url}/v1/tasks/${id}/events`, () => false, {}, 30_000)
    expect(events.map(e => e.event)).toEqual(['submitted', 'claimed', 'attempt-failed', 'claimed', 'attempt-failed', 'dead'])
    expect(events[2]?.data.error).toBe('out of coffee')
    expect(events.at(-1)?.data).toMatchObject({ reason: expect.stringMatching(/failed 2 of 2/), lastError: 'out of coffee' })
  })

  it('streams the mesh\'s state changes, filtered by capability', async () => {
    let id = ''
    // submitted once the stream answered: it hears what happens from then on
    const { events } = await readEvents(`${apis[1]!.url}/v1/events?capability=steps`, events => events.some(e => e.data.id === id && e.data.state === 'completed'), {}, 20_000, async () => {
      id = await submit({ capability: 'steps', input: 'again' })
      await submit({ capability: 'fail', input: { times: 0 } })
    })
    expect(events.every(e => e.event === 'state' && e.data.capability === 'steps')).toBe(true)
    expect(events.filter(e => e.data.id === id).map(e => e.data.state)).toEqual(expect.arrayContaining(['pending', 'completed']))
  })

  it('answers an unknown task with 404 and a malformed id with 400, before any stream', async () => {
    expect((await fetch(`${apis[1]!.url}/v1/tasks/${'a'.repeat(64)}/events`)).status).toBe(404)
    expect((await fetch(`${apis[1]!.url}/v1/tasks/nope/events`)).status).toBe(400)
    expect((await fetch(`${apis[1]!.url}/v1/events?state=sleeping`)).status).toBe(400)
  })
})
