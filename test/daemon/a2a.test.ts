import { randomUUID } from 'node:crypto'
import { Role, TaskState } from '@a2a-js/sdk'
import { Client, ClientFactory, DefaultAgentCardResolver, JsonRpcTransportFactory, createAuthenticatingFetchWithRetry } from '@a2a-js/sdk/client'
import { LegacyJsonRpcTransport } from '@a2a-js/sdk/compat/v0_3/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoAgent, sleepAgent, wordcountAgent } from '../../node/agents/basic.js'
import { a2aDoor } from '../../node/api/door-list.js'
import { ApiServer } from '../../node/api/server.js'
import { llmAgents } from '../../node/llm/agents.js'
import { createTestnet } from '../../sim/testnet.js'
import { idempotencyKeyOf } from '../../protocols/a2a/convert.js'
import { waitFor } from '../../sim/wait.js'
import { FakeOpenAI } from '../helpers/fake-openai.js'
import { FAST_TASKS } from '../helpers/fast.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'
import type { Part, SendMessageRequest, StreamResponse, Task } from '@a2a-js/sdk'

const reverseAgent: Agent<string> = {
  name: 'reverse',
  capabilities: [{ name: 'text.reverse', description: 'reverses a string', inputSchema: { type: 'string' } }],
  run: async ctx => [...ctx.input].reverse().join('')
}

const text = (value: string): Part => ({ content: { $case: 'text', value }, metadata: undefined, filename: '', mediaType: 'text/plain' })
const data = (value: unknown): Part => ({ content: { $case: 'data', value }, metadata: undefined, filename: '', mediaType: 'application/json' })

function request (parts: Part[], skill?: string): SendMessageRequest {
  return {
    tenant: '',
    message: { messageId: randomUUID(), contextId: '', taskId: '', role: Role.ROLE_USER, parts, metadata: skill === undefined ? undefined : { skill }, extensions: [], referenceTaskIds: [] },
    configuration: undefined,
    metadata: undefined
  }
}

function artifactValue (task: Task): unknown {
  const content = task.artifacts[0]?.parts[0]?.content
  return content?.value
}

async function rpc (api: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number, json: any }> {
  const res = await fetch(`${api}/a2a`, { method: 'POST', headers, body })
  return { status: res.status, json: await res.json() }
}

describe('A2A door, with the SDK client, on a three-node mesh', () => {
  let net: Testnet
  const apis: ApiServer[] = []
  // node 0 offers echo and sleep, node 1 text.reverse, node 2 nothing: it only takes requests
  const agents: Agent[][] = [[echoAgent, sleepAgent], [reverseAgent], []]
  let url: string[]

  beforeAll(async () => {
    net = await createTestnet(3, { perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 2_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, agents: agents[i] } }) })
    await net.ready()
    for (const node of net.nodes) apis.push(await ApiServer.listen(node, { port: 0 }))
    url = apis.map(a => a.url)
    // presence carries descriptions only now and then: wait until node 0 sees every capability
    await waitFor(() => ['echo', 'sleep', 'text.reverse'].every(n => net.nodes[0]?.tasks?.presence.live().some(p => p.capabilities.some(c => c.name === n))), { what: 'node 0 to see every capability' })
  })
  afterAll(async () => {
    await Promise.allSettled(apis.map(async a => a.close()))
    await net?.stop()
  })

  it('serves the agent card, its skills the mesh\'s live capabilities', async () => {
    const client = await new ClientFactory().createFromUrl(url[0] as string)
    const card = await client.getAgentCard()
    expect(card.skills.map(s => s.id)).toEqual(['echo', 'sleep', 'text.reverse'])
    expect(card.skills.find(s => s.id === 'text.reverse')).toMatchObject({ name: 'text.reverse', description: 'reverses a string', inputModes: ['text/plain'] })
    expect(card.capabilities?.streaming).toBe(true)
    expect(card.supportedInterfaces.map(i => [i.url, i.protocolVersion])).toEqual([[`${url[0] as string}/a2a`, '1.0'], [`${url[0] as string}/a2a`, '0.3']])
    // a client that does not ask for 1.0 gets 0.3's shape, at the new path and the old one
    for (const path of ['/.well-known/agent-card.json', '/.well-known/agent.json']) {
      const old = await (await fetch(`${url[0] as string}${path}`)).json()
      expect(old).toMatchObject({ url: `${url[0] as string}/a2a`, protocolVersion: '0.3', preferredTransport: 'JSONRPC', capabilities: { streaming: true } })
      expect(old.skills.map((s: any) => s.id)).toEqual(['echo', 'sleep', 'text.reverse'])
    }
  })

  it('runs a skill on another peer, and any node answers tasks/get for the mesh task id (A2A 1.0)', async () => {
    const client = await new ClientFactory().createFromUrl(url[0] as string)
    const sent = request([text('mesh')], 'text.reverse')
    const task = await client.sendMessage(sent) as Task
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED)
    expect(task.id).toMatch(/^[0-9a-f]{64}$/)
    expect(artifactValue(task)).toBe('hsem')
    expect(task.metadata?.agentmesh).toMatchObject({ capability: 'text.reverse', executor: net.nodes[1]?.peerId.toString() })
    // the mesh has it under the same id, each attempt allowed the door's attemptTimeoutMs (5
    // minutes), not the API's 60 s default, which aborted and restarted every longer skill
    const meshTask = await net.nodes[2]?.tasks?.service.get(task.id)
    expect(meshTask?.result?.value).toBe('hsem')
    expect(meshTask?.record.task.timeoutMs).toBe(300_000)
    const other = await new ClientFactory().createFromUrl(url[2] as string)
    const got = await other.getTask({ tenant: '', id: task.id })
    expect(got.status?.state).toBe(TaskState.TASK_STATE_COMPLETED)
    expect(artifactValue(got)).toBe('hsem')
    expect(got.contextId).toBe(task.contextId)
    // its history is the message that started it, on the node that took it (another never saw it)
    const messageId = sent.message?.messageId
    expect(task.history.map(m => m.messageId)).toEqual([messageId])
    expect((await client.getTask({ tenant: '', id: task.id })).history.map(m => [m.messageId, m.taskId])).toEqual([[messageId, task.id]])
    expect((await client.getTask({ tenant: '', id: task.id, historyLength: 0 })).history).toEqual([])
    expect(got.history).toEqual([])
  })

  it('gives a null result as a text part "null" of JSON media type on A2A 1.0 (the SDK reads a data part of null as none), and as data on 0.3', async () => {
    const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'echo', input: null })
    expect((await net.nodes[0]!.tasks!.service.waitFor(id, 10_000)).record.final?.state).toBe('completed')
    const client = await new ClientFactory().createFromUrl(url[0] as string)
    const got = await client.getTask({ tenant: '', id })
    expect(got.artifacts[0]?.parts).toEqual([expect.objectContaining({ content: { $case: 'text', value: 'null' }, mediaType: 'application/json' })])
    const card = await client.getAgentCard()
    const legacy = await new Client(new LegacyJsonRpcTransport({ endpoint: `${url[0] as string}/a2a` }), card).getTask({ tenant: '', id })
    expect(legacy.artifacts[0]?.parts[0]?.content).toEqual({ $case: 'data', value: null })
  })

  it('takes A2A 0.3\'s message/send and tasks/get, with a data part as input', async () => {
    const card = await (await new ClientFactory().createFromUrl(url[0] as string)).getAgentCard()
    const legacy = new Client(new LegacyJsonRpcTransport({ endpoint: `${url[1] as string}/a2a` }), card)
    const sent = request([data({ n: 1, tags: ['a'] })], 'echo')
    ;(sent.message as any).contextId = 'ctx-1'
    const task = await legacy.sendMessage(sent) as Task
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED)
    expect(artifactValue(task)).toEqual({ n: 1, tags: ['a'] })
    expect(task.contextId).toBe('ctx-1')
    const got = await new Client(new LegacyJsonRpcTransport({ endpoint: `${url[2] as string}/a2a` }), card).getTask({ tenant: '', id: task.id })
    expect(got).toMatchObject({ id: task.id, contextId: 'ctx-1', status: { state: TaskState.TASK_STATE_COMPLETED } })
    // the same message again is the same task, not a second one
    expect((await legacy.sendMessage(sent) as Task).id).toBe(task.id)
    // a configuration without `blocking` waits too (0.3 waits unless blocking is false)
    const send = (configuration: object): string => JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'message/send', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'data', data: { ms: 300 } }], metadata: { skill: 'sleep' } }, configuration } })
    expect((await rpc(url[1] as string, send({ acceptedOutputModes: ['application/json'] }))).json.result?.status?.state).toBe('completed')
    expect((await rpc(url[1] as string, send({ blocking: false }))).json.result?.status?.state).not.toBe('completed')
  })

  it('streams a task: submitted, working, the result, completed', async () => {
    const client = await new ClientFactory().createFromUrl(url[2] as string)
    const events: StreamResponse[] = []
    // long enough to be seen running by a stream that reads the state every 500 ms
    for await (const event of client.sendMessageStream(request([data({ ms: 2_000 })], 'sleep'))) events.push(event)
    const kinds = events.map(e => e.payload?.$case === 'statusUpdate' ? `status:${TaskState[e.payload.value.status?.state ?? 0]}` : e.payload?.$case)
    // (a second working update would say an attempt failed and is retried: a lease lost on a busy machine)
    expect(kinds[0]).toBe('task')
    expect(kinds.slice(-2)).toEqual(['artifactUpdate', 'status:TASK_STATE_COMPLETED'])
    expect(kinds.slice(1, -2).length).toBeGreaterThanOrEqual(1)
    expect(new Set(kinds.slice(1, -2))).toEqual(new Set(['status:TASK_STATE_WORKING']))
    const first = events[0]?.payload?.value as Task
    expect(first.status?.state).toBe(TaskState.TASK_STATE_SUBMITTED)
    const artifact = events.find(e => e.payload?.$case === 'artifactUpdate')?.payload?.value as any
    expect(artifact.taskId).toBe(first.id)
    expect(artifact.artifact.parts[0].content.value).toEqual({ slept: 2_000 })
  })

  it('streams over A2A 0.3 (message/stream) too', async () => {
    const card = await (await new ClientFactory().createFromUrl(url[0] as string)).getAgentCard()
    const legacy = new Client(new LegacyJsonRpcTransport({ endpoint: `${url[0] as string}/a2a` }), card)
    const events: StreamResponse[] = []
    for await (const event of legacy.sendMessageStream(request([text('hello')], 'text.reverse'))) events.push(event)
    expect(events[0]?.payload?.$case).toBe('task')
    const last = events.at(-1)?.payload
    expect(last?.$case === 'statusUpdate' && last.value.status?.state).toBe(TaskState.TASK_STATE_COMPLETED)
    const artifact = events.find(e => e.payload?.$case === 'artifactUpdate')?.payload?.value as any
    expect(artifact.artifact.parts[0].content.value).toBe('olleh')
    // the task's times never run backwards (submitted was stamped after the submit returned, which
    // can be after the claim the working update carries)
    const times = events.flatMap(e => e.payload?.$case === 'task' || e.payload?.$case === 'statusUpdate' ? [new Date(e.payload.value.status?.timestamp as unknown as string).getTime()] : [])
    expect(times.length).toBeGreaterThanOrEqual(2)
    expect(times.every(Number.isFinite)).toBe(true)
    expect(times).toEqual([...times].sort((a, b) => a - b))
  })

  it('cancels a long-running task from another node: canceled over A2A, to a subscriber, and on the mesh', async () => {
    const client = await new ClientFactory().createFromUrl(url[1] as string)
    const sent = request([data({ ms: 60_000 })], 'sleep')
    sent.configuration = { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: true }
    const task = await client.sendMessage(sent) as Task
    expect([TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING]).toContain(task.status?.state)
    await waitFor(async () => (await client.getTask({ tenant: '', id: task.id })).status?.state === TaskState.TASK_STATE_WORKING, { what: 'the sleep to start' })
    // a subscriber on node 0 follows the task until it ends (subscribed before the cancel: a final task cannot be subscribed to)
    const subscriber = await new ClientFactory().createFromUrl(url[0] as string)
    const subscription = subscriber.resubscribeTask({ tenant: '', id: task.id })[Symbol.asyncIterator]()
    const first = await subscription.next()
    const followed = (async () => {
      const out: StreamResponse[] = first.done === true ? [] : [first.value]
      for (let next = await subscription.next(); next.done !== true; next = await subscription.next()) out.push(next.value)
      return out
    })()
    const canceled = await (await new ClientFactory().createFromUrl(url[2] as string)).cancelTask({ tenant: '', id: task.id, metadata: undefined })
    expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED)
    expect((await net.nodes[0]?.tasks?.service.get(task.id))?.record.final?.state).toBe('canceled')
    const events = await followed
    expect(events[0]?.payload?.$case).toBe('task')
    const last = events.at(-1)?.payload
    expect(last?.$case === 'statusUpdate' && last.value.status?.state).toBe(TaskState.TASK_STATE_CANCELED)
    // a canceled task is not cancelable again (the mesh's idempotent cancel answered with the task)
    await expect(client.cancelTask({ tenant: '', id: task.id, metadata: undefined })).rejects.toMatchObject({ name: 'TaskNotCancelableError' })
    // nor is a completed one
    const done = await client.sendMessage(request([text('abc')], 'text.reverse')) as Task
    await expect(client.cancelTask({ tenant: '', id: done.id, metadata: undefined })).rejects.toMatchObject({ name: 'TaskNotCancelableError' })
    // and a final task cannot be subscribed to, as A2A says: an error at once, not a stream of the task
    const resubscribeDone = async (): Promise<unknown[]> => {
      const out: unknown[] = []
      for await (const event of subscriber.resubscribeTask({ tenant: '', id: done.id })) out.push(event)
      return out
    }
    await expect(resubscribeDone()).rejects.toMatchObject({ name: 'UnsupportedOperationError', message: expect.stringMatching(/already completed/) })
  })

  it('refuses a plain text message when no peer offers the agent capability, and an unknown task', async () => {
    const client = await new ClientFactory().createFromUrl(url[0] as string)
    await expect(client.sendMessage(request([text('what is the weather?')]))).rejects.toMatchObject({ name: 'UnsupportedOperationError', message: expect.stringMatching(/"agent" capability/) })
    await expect(client.sendMessage(request([text('x')], 'no.such.skill'))).rejects.toMatchObject({ name: 'RequestMalformedError', message: expect.stringMatching(/no\.such\.skill/) })
    await expect(client.getTask({ tenant: '', id: 'f'.repeat(64) })).rejects.toMatchObject({ name: 'TaskNotFoundError' })
    // a part the skill does not take (its card's inputModes) is refused before a task is made that could only fail
    await expect(client.sendMessage(request([text('300')], 'sleep'))).rejects.toMatchObject({ name: 'RequestMalformedError', message: expect.stringMatching(/"sleep" takes a data part/) })
    await expect(client.sendMessage(request([data({ s: 'abc' })], 'text.reverse'))).rejects.toMatchObject({ name: 'RequestMalformedError', message: expect.stringMatching(/"text\.reverse" takes a text part/) })
    // historyLength: 0 is no message (A2A: never more than asked); a negative one is refused before a task is made
    const none = await client.sendMessage({ ...request([data({ ms: 1 })], 'sleep'), configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, historyLength: 0, returnImmediately: false } })
    expect(none).toMatchObject({ history: [] })
    const before = (await (await fetch(`${url[0] as string}/v1/tasks?capability=sleep`)).json()).tasks.length
    await expect(client.sendMessage({ ...request([data({ ms: 1 })], 'sleep'), configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, historyLength: -1, returnImmediately: false } })).rejects.toMatchObject({ name: 'RequestMalformedError', message: expect.stringMatching(/historyLength/) })
    // a data part the skill's published input schema refuses: no task is made (one was, and went dead)
    await expect(client.sendMessage(request([data({ seconds: 1 })], 'sleep'))).rejects.toMatchObject({ name: 'RequestMalformedError', message: expect.stringMatching(/invalid input for the skill "sleep": ms: /) })
    // a push notification config is refused, not taken and ignored, and no task is made
    await expect(client.sendMessage({ ...request([data({ ms: 1 })], 'sleep'), configuration: { acceptedOutputModes: [], taskPushNotificationConfig: { tenant: '', id: 'p', taskId: '', url: 'http://127.0.0.1:9/hook', token: '', authentication: undefined }, returnImmediately: false } })).rejects.toMatchObject({ name: 'PushNotificationNotSupportedError', message: expect.stringMatching(/no push notifications/) })
    // and so is A2A 0.3's pushNotificationConfig, on message/send
    const v03 = await (await fetch(`${url[0] as string}/a2a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'message/send', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'data', data: { ms: 1 } }], metadata: { skill: 'sleep' } }, configuration: { pushNotificationConfig: { url: 'http://127.0.0.1:9/hook' } } } }) })).json()
    expect(v03).toMatchObject({ id: 9, error: { code: -32003 } })
    expect((await (await fetch(`${url[0] as string}/v1/tasks?capability=sleep`)).json()).tasks).toHaveLength(before)
    // a message whose task this node made with other options (a retry after the door's
    // attemptTimeoutMs changed) is the client's error, not an internal one
    const retried = request([data({ n: 'retried' })], 'echo')
    await net.nodes[0]!.tasks!.service.submit({ capability: 'echo', input: { n: 'retried' }, idempotencyKey: idempotencyKeyOf(retried.message!), timeoutMs: 60_000 })
    await expect(client.sendMessage(retried)).rejects.toMatchObject({ name: 'RequestMalformedError', message: expect.stringMatching(/idempotency key .* made with timeoutMs 60000 \(asked 300000\)/) })
    // an input the members would refuse is the client's error, not a failed majority
    await expect(client.sendMessage(request([data(JSON.parse('{"x": {"__proto__": {"a": 1}}}'))], 'echo'))).rejects.toMatchObject({ name: 'RequestMalformedError', message: expect.stringMatching(/not a JSON value/) })
    // a stream refused before its first event is a plain JSON-RPC error, which the client throws
    const refused = async (): Promise<void> => { for await (const _ of client.sendMessageStream(request([text('x')], 'no.such.skill'))) { /* none */ } }
    await expect(refused()).rejects.toMatchObject({ name: 'RequestMalformedError' })
  })

  it('lets a client leave a stream: the task runs on, the node keeps serving', async () => {
    const leave = new AbortController()
    const res = await fetch(`${url[2] as string}/a2a`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'message/stream', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'data', data: { ms: 1_000 } }], metadata: { skill: 'sleep' } } } }),
      signal: leave.signal
    })
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const first = new TextDecoder().decode((await reader.read()).value)
    const event = JSON.parse(first.replace(/^data: /, ''))
    expect(event).toMatchObject({ jsonrpc: '2.0', id: 7, result: { kind: 'task', status: { state: 'submitted' } } })
    leave.abort()
    const view = await net.nodes[2]?.tasks?.service.waitFor(event.result.id, 20_000)
    expect(view?.result?.value).toEqual({ slept: 1_000 })
    expect((await fetch(`${url[2] as string}/v1/health`)).status).toBe(200)
  })

  it('takes a bearer token when the API needs one, sent by the SDK\'s authenticating fetch', async () => {
    const guarded = await ApiServer.listen(net.nodes[2]!, { port: 0, token: 'sesame' })
    try {
      await expect(new ClientFactory().createFromUrl(guarded.url)).rejects.toThrow(/401/)
      const authFetch = createAuthenticatingFetchWithRetry(fetch, {
        headers: async () => ({ authorization: 'Bearer sesame' }),
        shouldRetryWithHeaders: async () => undefined
      })
      const client = await new ClientFactory({
        transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch })],
        cardResolver: new DefaultAgentCardResolver({ fetchImpl: authFetch })
      }).createFromUrl(guarded.url)
      const task = await client.sendMessage(request([text('door')], 'text.reverse')) as Task
      expect(artifactValue(task)).toBe('rood')
      // without the token, /a2a is refused before the door sees the request
      expect((await rpc(guarded.url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tasks/get', params: { id: task.id } }))).status).toBe(401)
    } finally {
      await guarded.close()
    }
  })

  it('answers malformed requests with JSON-RPC errors, counts them, and keeps serving', async () => {
    const api = url[0] as string
    const before = a2aDoor.stats.badRequests
    expect((await rpc(api, '{oops')).json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } })
    expect((await rpc(api, '[]')).json.error.code).toBe(-32600)
    expect((await rpc(api, JSON.stringify({ jsonrpc: '1.0', id: 1, method: 'message/send', params: {} }))).json).toMatchObject({ id: 1, error: { code: -32600 } })
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tasks/explode', params: {} }))).json).toMatchObject({ id: 2, error: { code: -32601 } })
    // names every object has are not methods either
    for (const method of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 3, method }))).json, method).toMatchObject({ id: 3, error: { code: -32601 } })
    }
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'message/send', params: [1] }))).json).toMatchObject({ id: 3, error: { code: -32602 } })
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'message/send', params: { message: { parts: 'no' } } }))).json).toMatchObject({ id: 4, error: { code: -32602 } })
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'SendMessage', params: { message: { messageId: 'm', parts: [] } } }))).json).toMatchObject({ id: 5, error: { code: -32602 } })
    // a wait flag that is no boolean: "no" was read as true, and the send waited
    const message = { kind: 'message', role: 'user', messageId: 'wf', parts: [{ kind: 'text', text: 'x' }] }
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'message/send', params: { message, configuration: { blocking: 'no' } } }))).json).toMatchObject({ id: 5, error: { code: -32602, message: expect.stringMatching(/configuration\.blocking must be true or false/) } })
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'SendMessage', params: { message, configuration: { returnImmediately: 1 } } }))).json).toMatchObject({ id: 5, error: { code: -32602, message: expect.stringMatching(/returnImmediately/) } })
    // 0.3's task methods with an id that is not a string: invalid params, not a leaked TypeError
    // and 1.0's, whose wire reads a number as a string: it was looked up as task "5" (TaskNotFound)
    for (const method of ['tasks/get', 'tasks/cancel', 'tasks/resubscribe', 'GetTask', 'CancelTask', 'SubscribeToTask']) {
      for (const params of method.includes('/') ? [{ id: 5 }, { id: null }, { id: {} }, {}] : [{ id: 5 }, { id: true }]) {
        const answer = await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 6, method, params }))
        expect(answer.json, `${method} ${JSON.stringify(params)}`).toMatchObject({ id: 6, error: { code: -32602 } })
      }
    }
    // notifications (no id) are never answered, their errors neither (counted all the same); one
    // too malformed to be a request is answered with id null
    const silent = async (body: object, headers: Record<string, string> = {}): Promise<void> => {
      const res = await fetch(`${api}/a2a`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
      expect({ status: res.status, body: await res.text() }, JSON.stringify(body)).toEqual({ status: 204, body: '' })
    }
    await silent({ jsonrpc: '2.0', method: 'tasks/explode' })
    await silent({ jsonrpc: '2.0', method: 'tasks/get', params: { id: 5 } })
    await silent({ jsonrpc: '2.0', method: 'tasks/get', params: { id: 'no-such-task' } })
    await silent({ jsonrpc: '2.0', method: 'tasks/get', params: { id: 'no-such-task' } }, { 'A2A-Version': '9.9' })
    // a notification's message/send is run, and its sender not made to wait for the task
    const t0 = Date.now()
    await silent({ jsonrpc: '2.0', method: 'message/send', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'data', data: { ms: 20_000 } }], metadata: { skill: 'sleep' } } } })
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect((await rpc(api, JSON.stringify({ jsonrpc: '1.0', method: 'tasks/get' }))).json).toMatchObject({ id: null, error: { code: -32600 } })
    // no extended card: A2A's own code for it on both wires, not "unsupported operation" (-32004)
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'agent/getAuthenticatedExtendedCard' }))).json).toMatchObject({ id: 7, error: { code: -32007 } })
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'GetExtendedAgentCard', params: {} }), { 'content-type': 'application/json', 'A2A-Version': '1.0' })).json).toMatchObject({ id: 8, error: { code: -32007 } })
    expect(a2aDoor.stats.badRequests - before).toBe(7 + 4 + 2 + 18 + 3)
    // a part that is not an object, and a push config without its params: refused, where the SDK's
    // conversion threw a TypeError, answered as an internal error (-32603)
    const v1 = { 'content-type': 'application/json', 'A2A-Version': '1.0' }
    for (const [method, parts] of [['SendMessage', [null]], ['SendStreamingMessage', [{ text: 'a' }, null]], ['message/send', [7]]] as const) {
      const answer = await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 10, method, params: { message: { messageId: 'm1', role: 'ROLE_USER', parts, metadata: { skill: 'echo' } } } }), v1)
      expect(answer.json, method).toMatchObject({ id: 10, error: { code: -32602, message: expect.stringMatching(/parts\[\d\] must be an object/) } })
    }
    // a text that is not a string, or a 0.3 data part whose data is not an object: the SDK made 5 the text "5", and the task ran
    const legacyMessage = (parts: unknown[]): string => JSON.stringify({ jsonrpc: '2.0', id: 12, method: 'message/send', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts, metadata: { skill: 'echo' } } } })
    for (const [parts, problem] of [[[{ kind: 'text', text: 5 }], 'parts[0].text must be a string'], [[{ kind: 'text' }], 'parts[0].text must be a string'], [[{ kind: 'text', text: 'ok' }, { kind: 'data', data: 'x' }], 'parts[1].data must be an object']] as const) {
      expect((await rpc(api, legacyMessage([...parts]))).json, problem).toMatchObject({ id: 12, error: { code: -32602, message: `params.message.${problem}` } })
    }
    expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 13, method: 'SendMessage', params: { message: { messageId: 'm2', role: 'ROLE_USER', parts: [{ text: 5 }], metadata: { skill: 'echo' } } } }), v1)).json).toMatchObject({ id: 13, error: { code: -32602, message: 'params.message.parts[0].text must be a string' } })
    for (const method of ['tasks/pushNotificationConfig/set', 'CreateTaskPushNotificationConfig', 'ListTaskPushNotificationConfigs']) {
      expect((await rpc(api, JSON.stringify({ jsonrpc: '2.0', id: 11, method, params: {} }), v1)).json, method).toMatchObject({ id: 11, error: { code: -32003 } })
    }
    // another content type is the API's own refusal, not the door's
    expect((await rpc(api, '{}', { 'content-type': 'text/plain' })).status).toBe(415)
    expect((await fetch(`${api}/v1/health`)).status).toBe(200)
  })
})

describe('A2A door: a plain text message goes to the agent capability', () => {
  let net: Testnet
  let api: ApiServer
  let openai: FakeOpenAI

  beforeAll(async () => {
    // the model asks for one tool call, then answers with what the tool said
    openai = new FakeOpenAI(body => body.messages.at(-1)?.role === 'tool'
      ? { content: `counted: ${String(body.messages.at(-1).content)}` }
      : { toolCalls: [{ name: 'text__wordcount', arguments: { text: 'to be or not to be' } }] })
    await openai.start()
    const agent = llmAgents({ model: 'test-model', baseURL: openai.baseURL, apiKey: 'test', maxRetries: 0 }).filter(a => a.name === 'agent')
    const agents: Agent[][] = [agent, [wordcountAgent]]
    net = await createTestnet(2, { perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 2_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, agents: agents[i] } }) })
    await net.ready()
    api = await ApiServer.listen(net.nodes[1]!, { port: 0 })
  })
  afterAll(async () => {
    await api?.close()
    await net?.stop()
    await openai?.stop()
  })

  it('runs the agent, which uses the mesh\'s tools, and answers with its text', async () => {
    const client = await new ClientFactory().createFromUrl(api.url)
    expect((await client.getAgentCard()).skills.find(s => s.id === 'agent')?.description).toMatch(/plain text/)
    const task = await client.sendMessage(request([text('count the words of "to be or not to be"')])) as Task
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED)
    expect(task.metadata?.agentmesh).toMatchObject({ capability: 'agent', executor: net.nodes[0]?.peerId.toString() })
    expect(artifactValue(task)).toMatch(/^counted: .*"to":2/)
    expect(openai.requests[0].messages.at(-1)).toMatchObject({ role: 'user', content: 'count the words of "to be or not to be"' })
  })

  it('takes a text message that names the agent skill as its prompt, as one that names none', async () => {
    const client = await new ClientFactory().createFromUrl(api.url)
    expect((await client.getAgentCard()).skills.find(s => s.id === 'agent')?.inputModes).toEqual(['text/plain', 'application/json'])
    const task = await client.sendMessage(request([text('count "named skill"')], 'agent')) as Task
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED)
    expect(task.metadata?.agentmesh).toMatchObject({ capability: 'agent' })
    expect(openai.requests.some(r => r.messages.at(-1)?.role === 'user' && r.messages.at(-1)?.content === 'count "named skill"')).toBe(true)
  })
})
