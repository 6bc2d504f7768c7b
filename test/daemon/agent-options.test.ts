import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { startDaemon } from '../../node/daemon/daemon.js'
import { expectFileRefused } from '../helpers/config-files.js'
import { FakeOpenAI } from '../helpers/fake-openai.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Daemon } from '../../node/daemon/daemon.js'
import type { NodeFlags } from '../../node/cli/node-command.js'
import type { AddressInfo } from 'node:net'

/** A lone daemon on `dir/data`, from the config file `dir/config.json` holding `json`, with `flags` beside it. */
async function start (dir: string, json: unknown, flags: NodeFlags = {}): Promise<Daemon> {
  await writeFile(join(dir, 'config.json'), JSON.stringify(json))
  return await startDaemon(await resolveDaemonConfig({ config: join(dir, 'config.json'), data: join(dir, 'data'), api: '127.0.0.1:0', ...flags }, {}))
}

describe('the agents\' options (concurrency, llm, mcpClients)', () => {
  const tmp = useTmpDirs()

  it('are refused by name when out of range or misspelt', async () => {
    const dir = await tmp()
    for (const [json, message] of [
      [{ llm: { timeoutMs: 5 } }, /llm\.timeoutMs/],
      [{ llm: { timeout: 5_000 } }, /timeout/],
      [{ mcpClients: { maxTools: 300 } }, /mcpClients\.maxTools/],
      [{ concurrency: { echo: 0 } }, /concurrency\.echo/]
    ] as const) await expectFileRefused(dir, 'bad.json', json, message)
  })

  it('concurrency sets how many tasks of a capability the node runs at once, and refuses one it does not run', async () => {
    const dir = await tmp()
    const tuned = await start(dir, { concurrency: { echo: 5 } }, { agents: 'echo,sleep' })
    try {
      const runtime = tuned.node.tasks!.runtime
      expect([runtime.concurrency('echo'), runtime.concurrency('sleep')]).toEqual([5, 8])
    } finally {
      await tuned.stop()
    }
    // the built-in agent is shared: the next node has its own number again
    const plain = await start(await tmp(), {}, { agents: 'echo' })
    try {
      expect(plain.node.tasks!.runtime.concurrency('echo')).toBe(64)
    } finally {
      await plain.stop()
    }
    // an agent that is a class instance with private fields keeps running with its new number
    const classy = await start(await tmp(), { concurrency: { tagger: 3 } }, { agents: 'none', agentsModule: join(import.meta.dirname, '..', 'fixtures', 'class-agent.mjs') })
    try {
      const tasks = classy.node.tasks!
      expect(tasks.runtime.concurrency('text.tag')).toBe(3)
      const { id } = await tasks.service.submit({ capability: 'text.tag', input: 'x' })
      expect((await tasks.service.waitFor(id, 15_000)).result?.value).toBe('tagged:x')
    } finally {
      await classy.stop()
    }
    await expect(start(await tmp(), { concurrency: { ecoh: 2 } }, { agents: 'echo' })).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/concurrency names "ecoh", which this node runs no agent for; it runs: echo/) })
  })

  it('llm.timeoutMs and llm.maxRetries bound a model call that never answers', async () => {
    // a model server that takes each request and never answers it
    let requests = 0
    const silent = createServer(() => { requests++ })
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    const baseURL = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1`
    const daemon = await start(await tmp(), { llm: { timeoutMs: 1_000, maxRetries: 0 }, tasks: { defaultMaxAttempts: 1 } }, { agents: 'llm.chat', llmModel: ['m'], llmBaseUrl: baseURL })
    try {
      const service = daemon.node.tasks!.service
      const { id } = await service.submit({ capability: 'llm.chat', input: { prompt: 'hello' } })
      // 60 s and 3 retries by default: the task would still be running
      const view = await service.waitFor(id, 20_000)
      expect(view.record.final?.state).toBe('dead')
      expect(JSON.stringify(view.record.attempts)).toMatch(/timed out/i)
      expect(requests).toBe(1)
    } finally {
      await daemon.stop()
      silent.closeAllConnections()
      await new Promise(resolve => silent.close(resolve))
    }
  })

  it('llm.maxSteps and llm.maxTokensPerTask end an agent whose model never stops calling tools', async () => {
    // a model that answers every request with one more tool call (to a tool no peer offers)
    const model = new FakeOpenAI(() => ({ toolCalls: [{ name: 'nope', arguments: {} }] }))
    await model.start()
    const run = async (llm: Record<string, number>): Promise<{ error: string, requests: number }> => {
      const before = model.requests.length
      const daemon = await start(await tmp(), { llm, tasks: { defaultMaxAttempts: 1 } }, { agents: 'agent', llmModel: ['m'], llmBaseUrl: model.baseURL })
      try {
        const service = daemon.node.tasks!.service
        const { id } = await service.submit({ capability: 'agent', input: { prompt: 'go' } })
        const view = await service.waitFor(id, 20_000)
        expect(view.record.final?.state).toBe('dead')
        return { error: JSON.stringify(view.record.attempts), requests: model.requests.length - before }
      } finally {
        await daemon.stop()
      }
    }
    try {
      // 8 steps by default
      const steps = await run({ maxSteps: 2 })
      expect(steps.error).toMatch(/no final answer within 2 steps/)
      expect(steps.requests).toBe(2)
      // 15 tokens a call: the third call spends more than 40 (100,000 by default)
      const tokens = await run({ maxTokensPerTask: 40 })
      expect(tokens.error).toMatch(/token budget spent: 45 of 40/)
      expect(tokens.requests).toBe(3)
    } finally {
      await model.stop()
    }
  })

  it('mcpClients.connectTimeoutMs bounds the start of an MCP server that never answers', async () => {
    const dir = await tmp()
    const server = { command: process.execPath, args: [join(import.meta.dirname, '..', 'fixtures', 'silent-mcp-server.mjs'), join(dir, 'running')] }
    const started = performance.now()
    // 30 s by default: past this test's own timeout
    await expect(start(dir, { mcpClients: { connectTimeoutMs: 1_000 }, mcpServers: { silent: server } }, { agents: 'none' })).rejects.toMatchObject({ message: expect.stringMatching(/silent/) })
    expect(performance.now() - started).toBeLessThan(20_000)
  }, 25_000)
})
