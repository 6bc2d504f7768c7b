import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent, sha256Agent, sleepAgent, textStatsAgent, wordcountAgent } from '../../node/agents/basic.js'
import { llmAgents } from '../../node/llm/agents.js'
import { resolveLlmConfig } from '../../node/llm/config.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FakeOpenAI } from '../helpers/fake-openai.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import { gatedAgent } from '../helpers/gated.js'
import type { Reply } from '../helpers/fake-openai.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet } from '../../sim/testnet.js'

const byName = (agents: Agent[], ...names: string[]): Agent[] => agents.filter(a => names.includes(a.name))
const lastRole = (body: any): string => body.messages.at(-1)?.role

describe('LLM agents against a local OpenAI-compatible server', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  let server: FakeOpenAI | undefined
  afterEach(async () => { await net?.stop(); await server?.stop(); net = undefined; server = undefined })

  async function mesh (script: (body: any, n: number) => Reply, perNode: (llm: Agent[]) => Agent[][]): Promise<Testnet> {
    server = new FakeOpenAI(script)
    await server.start()
    const llm = llmAgents({ model: 'test-model', baseURL: server.baseURL, apiKey: 'test', maxRetries: 3 })
    const agents = perNode(llm)
    // these tests count the model's requests: a 500 ms lease that lapses on a loaded machine re-runs
    // an agent, and its requests with it (CI beside a busy loop saw the plan agent's first request twice)
    net = await createTestnet(agents.length, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 5_000, agents: agents[i] } }) })
    await net.ready()
    return net
  }

  it('configures from flags before the environment, and offers nothing without a model', async () => {
    expect(await resolveLlmConfig({}, {})).toBeUndefined()
    expect(await resolveLlmConfig({}, { AGENTMESH_MODEL: 'm', OPENAI_BASE_URL: 'http://127.0.0.1:1/v1', OPENAI_API_KEY: 'k' })).toEqual({ model: 'm', models: ['m'], baseURL: 'http://127.0.0.1:1/v1', apiKey: 'k' })
    expect((await resolveLlmConfig({ llmModel: 'flag' }, { AGENTMESH_MODEL: 'env' }))?.model).toBe('flag')
    // several models: a comma list, a repeated flag, or both; the first is the default, each once
    expect(await resolveLlmConfig({}, { AGENTMESH_MODEL: ' a, b/c ,,a' })).toMatchObject({ model: 'a', models: ['a', 'b/c'] })
    expect(await resolveLlmConfig({ llmModel: ['x,y', 'z', 'y'] }, { AGENTMESH_MODEL: 'env' })).toMatchObject({ model: 'x', models: ['x', 'y', 'z'] })
    await expect(resolveLlmConfig({ llmModel: 'm', llmBaseUrl: 'not a url' }, {})).rejects.toHaveProperty('name', 'InvalidConfigError')
    // without a model too: a bad key file or URL is refused, not ignored
    await expect(resolveLlmConfig({ llmApiKeyFile: '/nonexistent/key' }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/cannot read --llm-api-key-file \/nonexistent\/key: ENOENT/) })
    await expect(resolveLlmConfig({ llmBaseUrl: 'not a url' }, {})).rejects.toHaveProperty('name', 'InvalidConfigError')
  })

  it('llm.chat streams tokens as progress, and retries 429 (Retry-After) and 500', async () => {
    let n = 0
    await mesh(() => {
      n++
      if (n === 1) return { status: 429, headers: { 'retry-after': '0' }, error: 'slow down' }
      if (n === 2) return { status: 500, error: 'oops' }
      return { stream: ['Hello', ', ', 'mesh'] }
    }, llm => [byName(llm, 'llm.chat'), []])
    const s = net!.nodes[1]!.tasks!.service
    const { id } = await s.submit({ capability: 'llm.chat', input: { prompt: 'greet the mesh', temperature: 0 } })
    const view = await s.waitFor(id, 20_000)
    expect(view.result?.value).toEqual({ text: 'Hello, mesh', usage: { prompt: 10, completion: 5, total: 15 }, finishReason: 'stop' })
    expect(server!.requests).toHaveLength(3)
    expect(server!.requests[2]).toMatchObject({ model: 'test-model', stream: true, temperature: 0, messages: [{ role: 'user', content: 'greet the mesh' }] })
    const progress = net!.nodes[0]!.tasks!.executor.progress.get(id)?.map(p => (p.event as { token: string }).token)
    expect(progress).toEqual(['Hello', ', ', 'mesh'])
  })

  it('a reply with no answer in it (cut-off JSON, a stream with no choice) fails the attempt, where the task completed with an empty text', async () => {
    let n = 0
    await mesh(() => {
      n++
      if (n === 1) return { raw: '{"id":"x","choices":[{"mess', contentType: 'application/json' }
      if (n === 2) return { raw: 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}\n\ndata: [DONE]\n\n', contentType: 'text/event-stream' }
      return { stream: ['at', ' last'] }
    }, llm => [byName(llm, 'llm.chat'), []])
    const s = net!.nodes[1]!.tasks!.service
    const { id } = await s.submit({ capability: 'llm.chat', input: { prompt: 'say something' } })
    const view = await s.waitFor(id, 20_000)
    expect(view.record.final?.state).toBe('completed')
    expect((view.result?.value as { text: string }).text).toBe('at last')
    expect(view.record.attempts.map(a => a.error ?? a.outcome)).toEqual([expect.stringMatching(/test-model streamed no choice: a malformed or cut-off reply/), expect.stringMatching(/streamed no choice/), 'completed'])
  })

  it('a stream cut off by the task\'s timeout, or closed with neither its finish_reason nor its usage, fails the attempt: what came so far is not certified as the answer', async () => {
    let n = 0
    await mesh(() => {
      n++
      // the first stalls after its first token past the attempt's timeout; the second ends cleanly with no finish_reason
      if (n === 1) return { stream: ['Hello', ' from'], hold: new Promise(() => {}) }
      const content = (text: string): string => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: text }, finish_reason: null }] })}\n\n`
      if (n === 2) return { raw: content('partial'), contentType: 'text/event-stream' }
      // a gateway that drops the finish_reason but ends with the usage asked for: a whole answer
      return { raw: content('whole answer') + `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`, contentType: 'text/event-stream' }
    }, llm => [byName(llm, 'llm.chat'), []])
    const s = net!.nodes[1]!.tasks!.service
    const { id } = await s.submit({ capability: 'llm.chat', input: { prompt: 'say something' }, timeoutMs: 1_500, maxAttempts: 3 })
    const view = await s.waitFor(id, 20_000)
    expect(view.result?.value).toEqual({ text: 'whole answer', usage: { prompt: 3, completion: 2, total: 5 }, finishReason: 'stop' })
    expect(view.record.attempts.map(a => a.outcome === 'completed' ? 'completed' : a.error)).toEqual([expect.stringMatching(/abort/i), expect.stringMatching(/test-model ended its stream with no finish_reason and no usage: a cut-off reply/), 'completed'])
  })

  it('a streamed reply that breaks the API (a tool call at index "__proto__", content that is no text) fails the attempt and touches no prototype; token counts that are no counts count as 0', async () => {
    const sse = (...chunks: unknown[]): string => chunks.map(c => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', ...c as object })}\n\n`).join('') + 'data: [DONE]\n\n'
    const delta = (d: unknown): unknown => ({ choices: [{ index: 0, delta: d, finish_reason: null }] })
    let n = 0
    await mesh(() => {
      n++
      if (n === 1) return { raw: sse(delta({ tool_calls: [{ index: '__proto__', id: 'polluted', type: 'function', function: { name: 'pwn', arguments: '{}' } }] })), contentType: 'text/event-stream' }
      if (n === 2) return { raw: sse(delta({ content: 5 })), contentType: 'text/event-stream' }
      return { stream: ['fine'], usage: { prompt_tokens: 'lots', completion_tokens: null, total_tokens: { a: 1 } } as never }
    }, llm => [byName(llm, 'llm.chat'), []])
    const s = net!.nodes[1]!.tasks!.service
    const { id } = await s.submit({ capability: 'llm.chat', input: { prompt: 'say something' } })
    const view = await s.waitFor(id, 20_000)
    expect(view.record.attempts.map(a => a.error ?? a.outcome)).toEqual([expect.stringMatching(/streamed a tool call at index "__proto__", not 0 to 127: a malformed reply/), expect.stringMatching(/answered content that is no text/), 'completed'])
    expect(view.result?.value).toEqual({ text: 'fine', usage: { prompt: 0, completion: 0, total: 0 }, finishReason: 'stop' })
    expect(([] as unknown as Record<string, unknown>).id).toBeUndefined()
    expect(Object.keys(Array.prototype)).toEqual([])
  })

  it('llm.chat with a model in its input runs on a peer that serves that model (llm.chat.<model>), not on any chat peer', async () => {
    server = new FakeOpenAI(() => ({ content: 'ok' }))
    await server.start()
    const served = (model: string): Agent[] => byName(llmAgents({ model, baseURL: server!.baseURL, apiKey: 'test', maxRetries: 0 }), 'llm.chat')
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 5_000, agents: i === 1 ? served('alpha') : i === 2 ? served('beta') : [] } }) })
    await net.ready()
    const [submitter, alpha, beta] = net.nodes as [AgentNode, AgentNode, AgentNode]
    await waitFor(() => ['llm.chat.alpha', 'llm.chat.beta'].every(c => submitter.tasks!.presence.live().some(p => p.capabilities.some(cap => cap.name === c))), { what: 'both model peers seen' })
    const s = submitter.tasks!.service
    for (let i = 0; i < 6; i++) {
      const { id } = await s.submit({ capability: 'llm.chat', input: { prompt: `hi ${i}`, model: 'beta' } })
      const view = await s.waitFor(id, 20_000)
      expect(view.record.final?.state).toBe('completed')
      expect(view.record.task.capability).toBe('llm.chat.beta')
      expect(view.record.attempts.map(a => a.peer)).toEqual([beta.peerId.toString()])
    }
    expect(alpha.tasks!.executor.stats.started).toBe(0)
    // a model no live peer names stays on llm.chat: an endpoint may serve models its node does not list
    const { id } = await s.submit({ capability: 'llm.chat', input: { prompt: 'hi', model: 'gamma' } })
    expect((await s.get(id)).record.task.capability).toBe('llm.chat')
  })

  it('agent: the model calls a mesh capability as a tool, and it runs on another peer', async () => {
    await mesh(body => lastRole(body) === 'tool'
      ? { content: `counted: ${String(body.messages.at(-1).content)}` }
      : { toolCalls: [{ name: 'text__wordcount', arguments: { text: 'to be or not to be' } }] },
    llm => [byName(llm, 'agent'), [wordcountAgent]])
    const s = net!.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'agent', input: { prompt: 'count the words of "to be or not to be"' } })
    const view = await s.waitFor(id, 20_000)
    const result = view.result?.value as { text: string, steps: number, toolCalls: number }
    expect(result).toMatchObject({ steps: 2, toolCalls: 1 })
    expect(result.text).toContain('"to":2')
    expect(server!.requests[0].tools.map((t: any) => t.function.name)).toEqual(['text__wordcount'])
    const [child] = await s.list({ parent: id })
    expect(child?.final?.peer).toBe(net!.nodes[1]!.peerId.toString())
  })

  it('agent: a run aborted during a tool call (its timeout) journals no error for the tool, which the next holder would replay', async () => {
    const { agent: gated } = gatedAgent('never opened')
    await mesh(() => ({ toolCalls: [{ name: 'gated', arguments: {} }] }), llm => [byName(llm, 'agent'), [gated]])
    const s = net!.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'agent', input: { prompt: 'wait for the gate' }, timeoutMs: 1_500, maxAttempts: 1 })
    expect((await s.waitFor(id, 20_000)).record.final?.state).toBe('dead')
    const record = (await s.find(id, { complete: true }))!.record
    expect(Object.keys(record.journal ?? {}).filter(k => k.startsWith('tool:'))).toEqual([])
  })

  it('plan: an invalid plan gets one repair round, then a three-step DAG runs over three peers', async () => {
    const good = { steps: [
      { id: 'a', capability: 'echo', input: 'hello planning world' },
      { id: 'b', capability: 'text.stats', input: '$ref:a', dependsOn: ['a'] },
      { id: 'c', capability: 'hash.sha256', input: '$ref:a', dependsOn: ['a'] }
    ] }
    await mesh((_body, n) => n === 1
      ? { content: JSON.stringify({ steps: [{ id: 'a', capability: 'teleport', input: 1 }] }) }
      : { content: '```json\n' + JSON.stringify(good) + '\n```' },
    llm => [[...byName(llm, 'plan'), echoAgent], [textStatsAgent], [sha256Agent]])
    const s = net!.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'plan', input: { goal: 'describe and hash a greeting' } })
    const view = await s.waitFor(id, 20_000)
    expect(view.record.final?.state).toBe('completed')
    const { results } = view.result?.value as { results: Record<string, any> }
    expect(results.a).toBe('hello planning world')
    expect(results.b).toMatchObject({ words: 3 })
    expect(results.c.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(server!.requests).toHaveLength(2)
    expect(server!.requests[1].messages.at(-1).content).toMatch(/teleport/)
    const children = await s.list({ parent: id })
    expect(new Set(children.map(c => c.final?.peer)).size).toBe(3)
  })

  it('plan: a plan still invalid after its repair round fails for good at once (a retry would replay both answers from the journal)', async () => {
    // a cycle: no change of the mesh makes it valid (a capability no peer offers is retried: one may come)
    await mesh(() => ({ content: JSON.stringify({ steps: [{ id: 'a', capability: 'echo', input: 1, dependsOn: ['b'] }, { id: 'b', capability: 'echo', input: 2, dependsOn: ['a'] }] }) }), llm => [[...byName(llm, 'plan'), echoAgent]])
    const s = net!.nodes[0]!.tasks!.service
    const { id } = await s.submit({ capability: 'plan', input: { goal: 'go somewhere' }, maxAttempts: 3 })
    const view = await s.waitFor(id, 20_000)
    expect(view.record.final?.state).toBe('dead')
    expect(view.record.final?.reason).toMatch(/plan is invalid after one repair: the dependencies form a cycle/)
    expect(view.record.attempts).toHaveLength(1)
    expect(server!.requests).toHaveLength(2)
  })

  it('a peer that takes an agent task over resumes from the journal instead of calling the model again', async () => {
    await mesh(body => lastRole(body) === 'tool'
      ? { content: 'slept well' }
      : { toolCalls: [{ name: 'sleep', arguments: { ms: 1_500 } }] },
    llm => [byName(llm, 'agent'), byName(llm, 'agent'), [sleepAgent]])
    const submitter = net!.nodes[2]!
    const { id } = await submitter.tasks!.service.submit({ capability: 'agent', input: { prompt: 'take a nap' } })
    // the holder has made its first model call (journaled) and waits on the sleep subtask
    const holder = await waitFor(() => net!.nodes.slice(0, 2).find(n => n.tasks!.executor.running().includes(id) && n.tasks!.executor.stats.stepsRun >= 1), { what: 'the first step journaled' })
    expect(server!.requests).toHaveLength(1)
    await holder.libp2p.stop()
    await holder.stop()
    const view = await submitter.tasks!.service.waitFor(id, 20_000)
    expect((view.result?.value as { text: string }).text).toBe('slept well')
    const survivor = net!.nodes.slice(0, 2).find(n => n !== holder)!
    expect(survivor.tasks!.executor.stats.stepsReplayed).toBeGreaterThanOrEqual(1)
    // one call for the tool request (made once, by the first holder) and one for the answer
    expect(server!.requests).toHaveLength(2)
  })
})
