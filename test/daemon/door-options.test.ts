import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { startDaemon } from '../../node/daemon/daemon.js'
import { expectFileRefused } from '../helpers/config-files.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Daemon } from '../../node/daemon/daemon.js'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Each wait here is cut to 1 s (2.5 s for a chat completion) by the config; the doors' own are 60 s to 10 minutes, the long poll's 5 minutes. */
const CUT_MS = 15_000
/** A sleep that outlasts every cut wait, and no more than the test. */
const SLEEP = { ms: 25_000 }

/** How long `fn` took, in ms, and what it gave. */
async function timed<T> (fn: () => Promise<T>): Promise<{ ms: number, value: T }> {
  const started = performance.now()
  const value = await fn()
  return { ms: performance.now() - started, value }
}

describe('the doors\' timers (doors) and the long poll\'s cap (http.maxWaitMs), from the config file', () => {
  const tmp = useTmpDirs()
  let daemon: Daemon
  let api: string
  let silent: Server

  beforeAll(async () => {
    // a model server that takes each request and never answers it: a chat completion's task runs on
    silent = createServer(() => {})
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    const dir = await tmp()
    await writeFile(join(dir, 'config.json'), JSON.stringify({
      http: { maxWaitMs: 1_000 },
      doors: { openai: { requestTimeoutMs: 2_500, keepaliveMs: 1_000, streamHoldMs: 0 }, mcp: { maxCallMs: 1_000, progressIntervalMs: 100 }, a2a: { sendWaitMs: 1_000, historyBytes: 0 } }
    }))
    daemon = await startDaemon(await resolveDaemonConfig({ config: join(dir, 'config.json'), data: join(dir, 'data'), api: '127.0.0.1:0', agents: 'sleep,llm.chat', llmModel: ['m'], llmBaseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1` }, {}))
    api = daemon.api.url
  })
  afterAll(async () => {
    await daemon?.stop()
    silent?.closeAllConnections()
    await new Promise(resolve => silent?.close(resolve))
  })

  it('are refused by name when out of range or misspelt', async () => {
    const dir = await tmp()
    for (const [json, message] of [
      [{ doors: { mcp: { maxCallMs: 5 } } }, /doors\.mcp\.maxCallMs/],
      [{ doors: { smtp: {} } }, /smtp/],
      [{ http: { maxWaitMs: 0 } }, /http\.maxWaitMs/]
    ] as const) await expectFileRefused(dir, 'bad.json', json, message)
  })

  it('http.maxWaitMs caps a long poll of a result', async () => {
    const { id } = await (await fetch(`${api}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'sleep', input: SLEEP }) })).json() as { id: string }
    const poll = await timed(async () => await fetch(`${api}/v1/tasks/${id}/result?wait=30000`))
    expect(poll.value.status).toBe(202)
    expect(poll.ms).toBeLessThan(CUT_MS)
  })

  it('doors.mcp.maxCallMs: a tools/call answers that its task carries on', async () => {
    const call = await timed(async () => await (await fetch(`${api}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'sleep', arguments: SLEEP } })
    })).text())
    expect(call.value).toMatch(/still unfinished after 1 s/)
    expect(call.ms).toBeLessThan(CUT_MS)
  })

  it('doors.mcp.progressIntervalMs: an open tools/call tells its progress that often', async () => {
    const text = await (await fetch(`${api}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'sleep', arguments: SLEEP, _meta: { progressToken: 'p1' } } })
    })).text()
    // one at the submit and one after each read of the task: every 2 s by default, so two in the call's 1 s
    expect(text.match(/notifications\/progress/g)?.length ?? 0).toBeGreaterThanOrEqual(3)
    expect(text).toMatch(/still unfinished after 1 s/)
  })

  it('doors.openai.keepaliveMs: a streamed completion that waits sends keep-alive comments that often', async () => {
    const res = await timed(async () => await (await fetch(`${api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hello' }] }) })).text())
    // every 15 s by default: none before the 2.5 s timeout ends the stream (the head at once: streamHoldMs 0)
    expect(res.value.match(/^: keep-alive$/gm)?.length ?? 0).toBeGreaterThanOrEqual(1)
    expect(res.value).toMatch(/time/i)
    expect(res.ms).toBeLessThan(CUT_MS)
  })

  it('doors.a2a.sendWaitMs: a blocking message/send answers with the task still working; doors.a2a.historyBytes keeps its message, or not', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'message/send', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'data', data: SLEEP }], metadata: { skill: 'sleep' } }, configuration: { blocking: true } } })
    const send = await timed(async () => await (await fetch(`${api}/a2a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json() as any)
    expect(send.value.result?.status?.state).toBe('working')
    expect(send.ms).toBeLessThan(CUT_MS)
    // doors.a2a.historyBytes 0: the node keeps no message, so tasks/get shows none (8 MiB by default)
    const get = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tasks/get', params: { id: send.value.result.id } })
    const got = await (await fetch(`${api}/a2a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: get })).json() as any
    expect(got.result?.id).toBe(send.value.result.id)
    expect(got.result?.history ?? []).toEqual([])
  })

  it('doors.openai.requestTimeoutMs: a chat completion whose task does not finish gets a timeout error', async () => {
    const res = await timed(async () => await fetch(`${api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] }) }))
    expect(res.value.status).toBeGreaterThanOrEqual(400)
    expect(await res.value.text()).toMatch(/time/i)
    expect(res.ms).toBeLessThan(CUT_MS)
  })
})
