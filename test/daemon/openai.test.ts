import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { APIError, APIUserAbortError, BadRequestError, NotFoundError, RateLimitError } from 'openai'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { startDaemon } from '../../node/daemon/daemon.js'
import { asOpenAIError, openaiDoor } from '../../node/api/openai-door.js'
import { HttpError } from '../../node/api/http.js'
import { chatCapability } from '../../protocols/openai/index.js'
import { waitFor } from '../../sim/wait.js'
import { FakeOpenAI } from '../helpers/fake-openai.js'
import { FAST_TASKS } from '../helpers/fast.js'
import type { Daemon } from '../../node/daemon/daemon.js'
import type { Reply } from '../helpers/fake-openai.js'

/** A gate a test opens: the fake model server holds a call until then. */
function gate (): { promise: Promise<void>, open: () => void, opened: () => boolean } {
  let open!: () => void
  let opened = false
  const promise = new Promise<void>(resolve => { open = () => { opened = true; resolve() } })
  return { promise, open, opened: () => opened }
}

/** A daemon in this process on 127.0.0.1 (real libp2p over TCP, LevelDB, HTTP API), serving `models` if any. */
async function daemon (dir: string, baseURL: string, models?: string[], bootstrap?: Daemon): Promise<Daemon> {
  const config = await resolveDaemonConfig({
    data: dir,
    api: '127.0.0.1:0',
    bootstrap: bootstrap === undefined ? [] : [bootstrap.nodeFile.addrs[0] as string],
    agents: models === undefined ? 'none' : 'llm.chat',
    llmModel: models,
    llmBaseUrl: baseURL,
    // a streamed completion that fails is answered with its status however slow this machine is
    doors: { openai: { streamHoldMs: 30_000 } }
  }, {})
  // leases of 2 s and 5 attempts: on a busy machine a 500 ms lease lapsed on the surviving peer too, 3 times
  return startDaemon(config, { tasks: { ...FAST_TASKS, leaseMs: 2_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, defaultMaxAttempts: 5 } })
}

/** A gateway node serving no model, and nodes serving the models given, all joined through the gateway. */
async function mesh (dir: string, server: FakeOpenAI, ...served: string[][]): Promise<Daemon[]> {
  const gateway = await daemon(join(dir, 'g'), server.baseURL)
  const out = [gateway]
  for (const [i, models] of served.entries()) out.push(await daemon(join(dir, `n${i}`), server.baseURL, models, gateway))
  // the gateway sees every served model's capability on every peer that serves it
  const wanted = served.flat()
  await waitFor(() => wanted.every(m => gateway.node.tasks!.presence.live().filter(p => p.capabilities.some(c => c.model === m)).length === served.filter(s => s.includes(m)).length), { what: 'every model in the gateway\'s presence view', timeoutMs: 20_000 })
  return out
}

async function stopAll (daemons: Daemon[]): Promise<void> {
  for (const d of daemons) await d.stop().catch(() => {})
}

const clientOf = (d: Daemon): OpenAI => new OpenAI({ baseURL: `${d.api.url}/v1`, apiKey: 'unused', maxRetries: 0 })
const lastUser = (body: any): string => body.messages.filter((m: any) => m.role === 'user').at(-1)?.content

describe('OpenAI-compatible API, with the official openai client', () => {
  let dir: string
  let server: FakeOpenAI
  let daemons: Daemon[]
  let client: OpenAI
  let hold = gate()

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-openai-'))
    server = new FakeOpenAI((body, n): Reply => {
      if (body.messages.at(-1)?.role === 'tool') return { content: `It is ${String(body.messages.at(-1).content)} in Paris` }
      if (body.tools !== undefined) return { toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] }
      if (lastUser(body) === 'refuse') return { status: 400, error: 'fake refuses', code: 'fake_refusal' }
      if (lastUser(body) === 'rate') return { status: 429, headers: { 'retry-after-ms': '1' }, error: 'slow down', code: 'rate_limit_exceeded' }
      if (lastUser(body) === 'slow') return { stream: ['one', ' two', ' three'], hold: hold.promise }
      // every call its own answer and usage
      return { stream: [`Hello #${n}`, ' from ', body.model], usage: { prompt_tokens: 7 + n, completion_tokens: 3, total_tokens: 10 + n } }
    })
    await server.start()
    daemons = await mesh(dir, server, ['fake-small', 'org/fake:large'], ['fake-small'])
    client = clientOf(daemons[0]!)
  }, 60_000)

  afterAll(async () => {
    hold.open()
    await stopAll(daemons ?? [])
    await server?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('lists the models live peers serve, each once', async () => {
    const list = await client.models.list()
    expect(list.data.map(m => m.id)).toEqual(['fake-small', 'org/fake:large'])
    expect(list.data[0]).toMatchObject({ object: 'model', owned_by: 'agentmesh' })
    expect((await client.models.retrieve('org/fake:large')).id).toBe('org/fake:large')
    // a name with characters a capability cannot hold maps to one that can, the same on every node
    expect(chatCapability('org/fake:large')).toMatch(/^llm\.chat\.org_fake_large-[0-9a-f]{8}$/)
  })

  it('answers a completion from a peer that serves the model, as a mesh task', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'org/fake:large', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }], max_completion_tokens: 64, frequency_penalty: 0.5, reasoning_effort: 'low' }).withResponse()
    const n = server.requests.length
    expect(data.choices[0]?.message.content).toBe(`Hello #${n} from org/fake:large`)
    expect(data.choices[0]?.finish_reason).toBe('stop')
    expect(data.usage).toEqual({ prompt_tokens: 7 + n, completion_tokens: 3, total_tokens: 10 + n })
    expect(data.model).toBe('org/fake:large')
    expect(server.requests.at(-1)).toMatchObject({ model: 'org/fake:large', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }], max_completion_tokens: 64, frequency_penalty: 0.5, reasoning_effort: 'low' })
    // under the name the client gave it: OpenAI's reasoning models refuse max_tokens
    expect(server.requests.at(-1)).not.toHaveProperty('max_tokens')
    // the answer names its task, which ran on the only peer serving that model
    const taskId = response.headers.get('x-agentmesh-task') as string
    expect(data.id).toBe(`chatcmpl-${taskId}`)
    const view = await daemons[0]!.node.tasks!.service.get(taskId)
    expect(view.record.task.capability).toBe(chatCapability('org/fake:large'))
    expect(view.record.final?.peer).toBe(daemons[1]!.nodeFile.peerId)
    // another call, another answer
    const again = await client.chat.completions.create({ model: 'org/fake:large', messages: [{ role: 'user', content: 'hi' }] })
    expect(again.choices[0]?.message.content).toBe(`Hello #${n + 1} from org/fake:large`)
  })

  it('streams tokens as chunks while the model is still answering, ending with usage and [DONE]', async () => {
    hold = gate()
    const stream = await client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'slow' }], stream: true, stream_options: { include_usage: true } })
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = []
    for await (const chunk of stream) {
      chunks.push(chunk)
      const content = chunk.choices[0]?.delta.content
      // the first token reached the client while the model server still held the rest back
      if (content === 'one') {
        expect(hold.opened()).toBe(false)
        hold.open()
      }
    }
    const content = chunks.map(c => c.choices[0]?.delta.content ?? '').join('')
    expect(content).toBe('one two three')
    expect(chunks.filter(c => (c.choices[0]?.delta.content ?? '') !== '').length).toBe(3)
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant')
    expect(chunks.map(c => c.choices[0]?.finish_reason).filter(f => f !== null && f !== undefined)).toEqual(['stop'])
    expect(chunks.at(-1)).toMatchObject({ object: 'chat.completion.chunk', choices: [], usage: { total_tokens: 15 } })
    // as OpenAI's: with include_usage, every chunk before the last says `usage: null`
    expect(chunks.slice(0, -1).every(c => c.usage === null)).toBe(true)

    // the wire itself: server-sent events, the last one [DONE]
    const res = await fetch(`${daemons[0]!.api.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'fake-small', messages: [{ role: 'user', content: 'hi' }], stream: true }) })
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = (await res.text()).split('\n\n').filter(e => e.startsWith('data: '))
    expect(events.at(-1)).toBe('data: [DONE]')
    expect(events.slice(0, -1).every(e => JSON.parse(e.slice(6)).object === 'chat.completion.chunk')).toBe(true)
    // without include_usage, no chunk has the key
    expect(events.slice(0, -1).some(e => 'usage' in JSON.parse(e.slice(6)))).toBe(false)
  })

  it('cancels the task of a client that leaves before its answer', async () => {
    hold = gate()
    const controller = new AbortController()
    const { data: stream, response } = await client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'slow' }], stream: true }, { signal: controller.signal }).withResponse()
    const id = response.headers.get('x-agentmesh-task') as string
    const parts: string[] = []
    // the client's stream ends quietly on its own abort
    for await (const chunk of stream) {
      parts.push(chunk.choices[0]?.delta.content ?? '')
      if (chunk.choices[0]?.delta.content === 'one') controller.abort()
    }
    expect(parts.join('')).toBe('one')
    const tasks = daemons[0]!.node.tasks!.service
    await waitFor(async () => (await tasks.get(id)).record.final?.state === 'canceled', { what: 'the task canceled' })
    hold.open()

    // the same for a client waiting on a non-streamed answer
    hold = gate()
    const calls = server.requests.length
    const left = new AbortController()
    const waiting = client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'slow' }] }, { signal: left.signal }).catch((e: unknown) => e)
    await waitFor(() => server.requests.length === calls + 1, { what: 'the model call' })
    const running = await waitFor(async () => (await tasks.list({ capability: 'llm.chat.fake-small', state: 'running' })).find(r => r.task.id !== id), { what: 'the running task' })
    left.abort()
    expect(await waiting).toBeInstanceOf(APIUserAbortError)
    await waitFor(async () => (await tasks.get(running.task.id)).record.final?.state === 'canceled', { what: 'the second task canceled' })
    expect(openaiDoor.stats().clientsGone).toBeGreaterThanOrEqual(2)
    hold.open()
  })

  it('passes tools and tool_choice through and answers the model\'s tool call, streamed or not', async () => {
    const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', description: 'the weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }]
    const question: OpenAI.Chat.Completions.ChatCompletionMessageParam = { role: 'user', content: 'weather in Paris?' }
    const first = await client.chat.completions.create({ model: 'fake-small', messages: [question], tools, tool_choice: 'auto' })
    expect(server.requests.at(-1)).toMatchObject({ tools, tool_choice: 'auto' })
    const choice = first.choices[0]!
    expect(choice.finish_reason).toBe('tool_calls')
    expect(choice.message.content).toBeNull()
    const call = choice.message.tool_calls?.[0]
    expect(call?.type === 'function' ? [call.function.name, JSON.parse(call.function.arguments)] : undefined).toEqual(['get_weather', { city: 'Paris' }])

    // the conversation goes on with the tool's answer: assistant tool_calls and the tool message pass through
    const second = await client.chat.completions.create({ model: 'fake-small', tools, messages: [question, choice.message, { role: 'tool', tool_call_id: call!.id, content: 'sunny' }] })
    expect(second.choices[0]?.message.content).toBe('It is sunny in Paris')
    expect(server.requests.at(-1).messages.slice(1)).toMatchObject([{ role: 'assistant', tool_calls: [{ id: call!.id }] }, { role: 'tool', tool_call_id: call!.id, content: 'sunny' }])

    // streamed: the model's tool call deltas are put together on the executing peer and sent on
    const stream = await client.chat.completions.create({ model: 'fake-small', messages: [question], tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, stream: true })
    const calls: Record<number, { id?: string, name: string, arguments: string }> = {}
    let finish: string | null | undefined
    for await (const chunk of stream) {
      for (const d of chunk.choices[0]?.delta.tool_calls ?? []) {
        const c = calls[d.index] ??= { name: '', arguments: '' }
        c.id ??= d.id
        c.name += d.function?.name ?? ''
        c.arguments += d.function?.arguments ?? ''
      }
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect(Object.values(calls).map(c => [c.name, JSON.parse(c.arguments), typeof c.id])).toEqual([['get_weather', { city: 'Paris' }, 'string']])
    expect(finish).toBe('tool_calls')
    expect(server.requests.at(-1)).toMatchObject({ stream: true, tool_choice: { type: 'function', function: { name: 'get_weather' } } })
  })

  it('answers an unknown model with 404 model_not_found, and a malformed body with 400, in OpenAI\'s shape', async () => {
    const unknown = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }).catch((err: unknown) => err)
    expect(unknown).toBeInstanceOf(NotFoundError)
    expect(unknown).toMatchObject({ status: 404, code: 'model_not_found', param: 'model', type: 'invalid_request_error' })
    await expect(client.models.retrieve('no-such-model')).rejects.toBeInstanceOf(NotFoundError)
    // the model '' (a trailing slash, which the router otherwise ignores) is no model, not the list
    await expect(client.models.retrieve('')).rejects.toBeInstanceOf(NotFoundError)
    expect((await fetch(`${daemons[0]!.api.url}/v1/models/?x=1`)).status).toBe(404)
    expect(((await (await fetch(`${daemons[0]!.api.url}/v1/models?x=1`)).json()) as any).object).toBe('list')
    // an endpoint the door does not serve: OpenAI's fields too, beside the control API's name
    const unserved = await client.embeddings.create({ model: 'fake-small', input: 'hi' }).catch((err: unknown) => err)
    expect(unserved).toBeInstanceOf(NotFoundError)
    expect(unserved).toMatchObject({ status: 404, type: 'invalid_request_error', code: 'unknown_url', error: { name: 'NOT_FOUND' } })
    // the router's own answers on the door's paths are in OpenAI's shape too: a wrong method, a model name past any id
    const tooLong = await client.models.retrieve('x'.repeat(3_000)).catch((err: unknown) => err)
    expect(tooLong).toMatchObject({ status: 414, type: 'invalid_request_error', code: 'uri_too_long' })
    // the control API's own refusals on the door count where they do on every route, by reason
    const counted = daemons[0]!.api.stats.badRequests
    const [repeated, tooLarge] = [counted['repeated-param'], counted['body-too-large']]
    expect((await fetch(`${daemons[0]!.api.url}/v1/chat/completions?x=1&x=2`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(400)
    expect((await fetch(`${daemons[0]!.api.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"model":"${'m'.repeat(3 * 1024 * 1024)}"}` })).status).toBe(413)
    expect([counted['repeated-param'], counted['body-too-large']]).toEqual([repeated + 1, tooLarge + 1])
    const wrongMethod = await fetch(`${daemons[0]!.api.url}/v1/chat/completions`)
    expect({ status: wrongMethod.status, error: ((await wrongMethod.json()) as any).error }).toMatchObject({ status: 405, error: { type: 'invalid_request_error', param: null, code: 'method_not_allowed' } })
    const bad = await client.chat.completions.create({ model: 'fake-small', messages: [] }).catch((err: unknown) => err)
    expect(bad).toBeInstanceOf(BadRequestError)
    expect(bad).toMatchObject({ status: 400, param: 'messages', type: 'invalid_request_error' })
    // a function tool without its function, which OpenAI's API refuses: it was passed to the model
    const toolless = await client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' } as any] }).catch((err: unknown) => err)
    expect(toolless).toBeInstanceOf(BadRequestError)
    expect(toolless).toMatchObject({ status: 400, param: 'tools.0.function', message: expect.stringMatching(/a function tool needs function/) })
    const res = await fetch(`${daemons[0]!.api.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "fake-small", "messages": [' })
    expect(res.status).toBe(400)
    expect((await res.json()).error).toMatchObject({ type: 'invalid_request_error', param: null })
    // a task input over the 1 MiB limit (the body is under the 2 MiB one): OpenAI's 413, not a 500
    const large = await client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'x'.repeat(1_200_000) }] }).catch((err: unknown) => err)
    expect(large).toMatchObject({ status: 413, code: 'request_too_large' })
    // a body over the API's own limit (2 MiB) is the same refusal, and an unsupported type says what to send
    const huge = await client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'x'.repeat(2_200_000) }] }).catch((err: unknown) => err)
    expect(huge).toMatchObject({ status: 413, code: 'request_too_large', message: expect.stringMatching(/exceeds the limit/) })
    const plain = await fetch(`${daemons[0]!.api.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' })
    expect({ status: plain.status, error: (await plain.json()).error }).toMatchObject({ status: 415, error: { code: 'unsupported_media_type', message: expect.stringMatching(/application\/json/) } })
    // the model's own refusal: its status, message and code, each said once
    const refused = await client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'refuse' }] }).catch((err: unknown) => err)
    expect(refused).toMatchObject({ status: 400, code: 'fake_refusal', message: expect.stringMatching(/^400 fake refuses \(task [0-9a-f]{64}\)$/) })
    // streamed, the same: before, a 200 and an error event, which the client threw with no status
    const streamed = await client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'refuse' }], stream: true }).catch((err: unknown) => err)
    expect(streamed).toMatchObject({ status: 400, code: 'fake_refusal', message: expect.stringMatching(/^400 fake refuses/) })
    // the model's 429, on every try of every attempt: a 429 with the model's code, where it was a 502 task_failed
    const limited = await client.chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'rate' }] }).catch((err: unknown) => err)
    expect(limited).toBeInstanceOf(RateLimitError)
    expect(limited).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'rate_limit_error', message: expect.stringMatching(/^429 slow down \(task [0-9a-f]{64}\)$/) })
    // values the members would refuse, in fields the door passes on unread: the client's 400, not a 500
    // or a 503 (a majority that "could not" store what none of them will)
    const protoKey = await client.chat.completions.create(JSON.parse('{"model": "fake-small", "messages": [{"role": "user", "content": "x", "extra": {"__proto__": 1}}]}')).catch((err: unknown) => err)
    expect(protoKey).toBeInstanceOf(BadRequestError)
    expect(protoKey).toMatchObject({ status: 400, message: expect.stringMatching(/not a JSON value/) })
    const infinite = await fetch(`${daemons[0]!.api.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "fake-small", "messages": [{"role": "user", "content": "x", "extra": 1e400}]}' })
    expect(infinite.status).toBe(400)
    expect((await infinite.json()).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringMatching(/not a JSON value/) })
    const metrics = await (await fetch(`${daemons[0]!.api.url}/v1/metrics`)).json()
    expect(metrics.api.internalErrors).toBe(0)
    expect(openaiDoor.stats()).toMatchObject({ modelNotFound: 4 })
    expect(openaiDoor.stats().badRequests).toBeGreaterThanOrEqual(2)
  })
})

describe('OpenAI-compatible API when the executing peer dies', () => {
  let dir: string | undefined
  let server: FakeOpenAI | undefined
  let daemons: Daemon[] = []
  let held = gate()
  afterEach(async () => {
    held.open()
    held = gate()
    await stopAll(daemons)
    daemons = []
    await server?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  /** Crashes the peer running the held call: its connections drop, its lease lapses, nothing is handed back. */
  async function crashHolder (): Promise<Daemon> {
    await waitFor(() => server!.requests.length === 1, { what: 'the first model call' })
    const holder = await waitFor(() => daemons.slice(1).find(d => d.node.tasks!.executor.running().length > 0), { what: 'the peer running the task' })
    await holder.node.libp2p.stop()
    return holder
  }

  it('answers 503 mesh_unavailable with Retry-After when a majority of the placement is gone, which the client reads', async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-openai-alone-'))
    server = new FakeOpenAI(() => ({ stream: ['never', ' asked'] }))
    await server.start()
    // the gateway serves the model itself, so it stays listed once the others are gone
    const gateway = await daemon(join(dir, 'g'), server.baseURL, ['fake-small'])
    daemons = [gateway, await daemon(join(dir, 'a'), server.baseURL, ['fake-small'], gateway), await daemon(join(dir, 'b'), server.baseURL, ['fake-small'], gateway)]
    await waitFor(() => gateway.node.tasks!.presence.live().filter(p => p.capabilities.some(c => c.model === 'fake-small')).length === 3, { what: 'three peers serving the model', timeoutMs: 20_000 })
    // stopped, they stay members (membershipWindowMs): every placement names two of them
    for (const d of daemons.slice(1)) await d.stop()
    daemons = [gateway]
    const err = await clientOf(gateway).chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(APIError)
    expect({ status: (err as APIError).status, code: (err as APIError).code, retryAfter: (err as APIError).headers?.get('retry-after') }).toEqual({ status: 503, code: 'mesh_unavailable', retryAfter: '1' })
    expect(server.requests).toHaveLength(0)
  }, 60_000)

  it('a non-streamed completion runs again on another peer and is still answered', async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-openai-kill-'))
    server = new FakeOpenAI((_body, n) => n === 1 ? { stream: ['never', ' finished'], hold: held.promise } : { stream: ['Recovered', ' answer'] })
    await server.start()
    daemons = await mesh(dir, server, ['fake-small'], ['fake-small'])
    const pending = clientOf(daemons[0]!).chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'survive' }] }).withResponse()
    const holder = await crashHolder()
    const { data, response } = await pending
    expect(data.choices[0]?.message.content).toBe('Recovered answer')
    expect(server.requests).toHaveLength(2)
    const view = await daemons[0]!.node.tasks!.service.get(response.headers.get('x-agentmesh-task') as string)
    expect(view.record.final?.peer).not.toBe(holder.nodeFile.peerId)
    // (a partial claim given back, 'released', is not an attempt)
    expect(view.record.attempts.map(a => a.outcome).filter(o => o !== 'released')).toEqual(['expired', 'completed'])
  }, 60_000)

  it('a stream re-run midway goes on where it was when the new run re-traces it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-openai-rerun-'))
    // a deterministic model: the second run says the same, and the client must not see it twice
    server = new FakeOpenAI((_body, n) => ({ stream: ['Same', ' words', ' again'], ...(n === 1 ? { hold: held.promise } : {}) }))
    await server.start()
    daemons = await mesh(dir, server, ['fake-small'], ['fake-small'])
    const rerun = openaiDoor.stats().streamsRerun
    const stream = await clientOf(daemons[0]!).chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'go on' }], stream: true })
    const parts: string[] = []
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta.content ?? ''
      if (content !== '') parts.push(content)
      if (content === 'Same') await crashHolder()
    }
    expect(parts.join('')).toBe('Same words again')
    expect(server.requests).toHaveLength(2)
    expect(openaiDoor.stats().streamsRerun).toBe(rerun + 1)
  }, 60_000)

  it('a stream whose re-run says something else ends with an error event', async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-openai-diverge-'))
    server = new FakeOpenAI((_body, n) => n === 1 ? { stream: ['First', ' take'], hold: held.promise } : { stream: ['Second', ' take'] })
    await server.start()
    daemons = await mesh(dir, server, ['fake-small'], ['fake-small'])
    const stream = await clientOf(daemons[0]!).chat.completions.create({ model: 'fake-small', messages: [{ role: 'user', content: 'go on' }], stream: true })
    const parts: string[] = []
    const err = await (async () => {
      for await (const chunk of stream) {
        const content = chunk.choices[0]?.delta.content ?? ''
        if (content !== '') parts.push(content)
        if (content === 'First') await crashHolder()
      }
    })().catch((e: unknown) => e)
    expect(parts).toEqual(['First'])
    expect(err).toBeInstanceOf(APIError)
    expect(err).toMatchObject({ code: 'stream_diverged' })
  }, 60_000)
})

describe('the OpenAI door\'s answer to the API\'s own refusals', () => {
  it('answers a stopping node\'s 503 as itself, with its wait, not as a bug\'s 500', () => {
    const stopping = Object.assign(new HttpError(503, 'NODE_STOPPING', 'this node is stopping: send the request to another member of the mesh'), { retryAfterS: 1 })
    const answer = asOpenAIError(stopping, {} as never)
    expect({ status: answer.status, retryAfterMs: answer.retryAfterMs, body: answer.toJSON() }).toMatchObject({ status: 503, retryAfterMs: 1_000, body: { error: { type: 'api_error', code: 'node_stopping', message: expect.stringMatching(/stopping/) } } })
  })
})
