import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../sim/wait.js'
import { BIN, getJson, runCli } from '../../sim/daemon-process.js'
import { useDaemons } from '../helpers/daemons.js'
import { useTmpDirs } from '../helpers/tmp.js'
import { once } from 'node:events'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { startDaemon } from '../../node/daemon/daemon.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'
import type { AddressInfo } from 'node:net'

const BULKS = 3
// small enough to be stored well inside the stop's 3 s grace on a busy machine
const PER_BULK = 300

/** Every echo task a node holds (fresh meshes: they all came from this test). */
async function echoIds (d: DaemonProcess): Promise<string[]> {
  return (await getJson<{ tasks: Array<{ id: string }> }>(`${d.api}/v1/tasks?capability=echo&limit=10000`)).tasks.map(t => t.id)
}

describe('a daemon stopped while it is taking submits', () => {
  const tmp = useTmpDirs()
  const start = useDaemons(['--agents', 'echo'])

  it('answers every submit under way on SIGTERM (acknowledged or refused, never cut off; a long poll answers with its state, an event stream ends cleanly), exits 0, and the mesh holds exactly the acknowledged tasks', async () => {
    const dir = await tmp()
    const a = await start(dir, 'a')
    const b = await start(dir, 'b', a)
    const c = await start(dir, 'c', a)
    await waitFor(async () => {
      const peers = await Promise.all([a, b, c].map(async d => (await getJson<{ peers: unknown[] }>(`${d.api}/v1/peers`)).peers.length))
      const live = (await getJson<{ capabilities: Array<{ peers: unknown[] }> }>(`${c.api}/v1/capabilities`)).capabilities
      return peers.every(n => n === 2) && live.some(cap => cap.peers.length === 3)
    }, { what: 'the three daemons to see each other', timeoutMs: 30_000 })

    // a long poll under way when the stop comes answers with the state it has, at once
    const waiting = await (await fetch(`${c.api}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'nobody.offers.this', input: 1 }) })).json() as { id: string }
    // an event stream open when the stop comes ends cleanly (its client resumes it elsewhere), not cut off
    // (filtered to the waiting task's capability: the whole mesh's events of 900 submits, unread by a
    // busy test process, passed the stream's 1 MiB buffer and it was cut off as a stuck client)
    const events = await fetch(`${c.api}/v1/events?capability=nobody.offers.this`)
    expect(events.status).toBe(200)
    const streamEnd = (async () => {
      const reader = events.body!.getReader()
      try {
        while (!(await reader.read()).done) {}
        return 'ended'
      } catch (err) {
        return `cut: ${String((err as Error)?.cause ?? err)}`
      }
    })()
    const submittedBefore = (await getJson<{ tasks: { submitted: number } }>(`${c.api}/v1/metrics`)).tasks.submitted
    const longPoll = fetch(`${c.api}/v1/tasks/${waiting.id}/result?wait=60000`).then(async res => ({ status: res.status, json: await res.json() as any }), (err: Error) => ({ status: 0, json: { error: String(err?.cause ?? err) } }))
    const bulks = Array.from({ length: BULKS }, async (_, k) => {
      const body = JSON.stringify(Array.from({ length: PER_BULK }, (_, i) => ({ capability: 'echo', input: { k, i } })))
      try {
        const res = await fetch(`${c.api}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        return { status: res.status, json: await res.json() as any }
      } catch (err) {
        return { status: 0, json: { error: String((err as Error)?.cause ?? err) } }
      }
    })
    // the stop comes while the submits are being stored
    await waitFor(async () => ((await getJson<{ tasks: { submitted: number } }>(`${c.api}/v1/metrics`)).tasks.submitted) > submittedBefore, { what: 'the node to begin storing the submits', intervalMs: 20 })
    c.proc.kill('SIGTERM')
    const answers = await Promise.all(bulks)
    expect(await longPoll).toEqual({ status: 202, json: { id: waiting.id, state: 'pending' } })
    expect(await streamEnd).toBe('ended')
    expect(await c.exited).toBe(0)

    // each got an answer: its tasks' ids (each item an id or its own error), or 503 for a request that came too late
    for (const answer of answers) {
      expect(answer.status, JSON.stringify(answer.json).slice(0, 300)).toBeOneOf([202, 503])
      if (answer.status === 503) expect(answer.json.error.name).toBe('NODE_STOPPING')
    }
    const acknowledged = answers.flatMap(answer => answer.status === 202 ? (answer.json.tasks as Array<{ id?: string }>).flatMap(t => t.id === undefined ? [] : [t.id]) : [])
    expect(acknowledged.length).toBeGreaterThan(0)
    // every placement of three names all three nodes, so a task stored on a majority is on a or b
    const held = async (): Promise<Set<string>> => new Set([...await echoIds(a), ...await echoIds(b)])
    await waitFor(async () => (await held()).size >= acknowledged.length, { what: 'the acknowledged tasks on the other two', timeoutMs: 30_000 })
    expect([...await held()].sort()).toEqual([...new Set(acknowledged)].sort())
    await waitFor(async () => (await getJson<{ tasks: unknown[] }>(`${a.api}/v1/tasks?capability=echo&state=completed&limit=10000`)).tasks.length === acknowledged.length, { what: 'every acknowledged task to complete', timeoutMs: 60_000 })

  })

  it('submit --bulk prints the ids a node answered before it went, and names each task it could not send', async () => {
    // a node that answers the first request of tasks, then is gone mid-file
    let requests = 0
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', chunk => { body += String(chunk) })
      req.on('end', () => {
        if (++requests > 1) { res.socket?.destroy(); return }
        const tasks = (JSON.parse(body) as unknown[]).map((_, i) => ({ id: i.toString(16).padStart(64, '0'), created: true }))
        res.writeHead(202, { 'content-type': 'application/json', 'x-agentmesh-version': 'test' }).end(JSON.stringify({ tasks }))
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const file = join(await tmp(), 'tasks.jsonl')
      // past one request's 1,000 tasks: two requests
      // the last with an idempotency key: only that one is safe to send again
      await writeFile(file, Array.from({ length: 1_002 }, (_, i) => JSON.stringify({ capability: 'echo', input: i, ...(i === 1_001 ? { idempotencyKey: 'k' } : {}) })).join('\n'))
      const r = await runCli(['submit', '--api', api, '--bulk', file])
      expect(r.code).toBe(1)
      const lines = r.stdout.trim().split('\n')
      expect(lines).toHaveLength(1_002)
      expect(lines.slice(0, 1_000).every(l => /^[0-9a-f]{64}$/.test(l))).toBe(true)
      expect(lines.slice(1_000)).toEqual([
        expect.stringMatching(/^error: line 1001: no node answers at .*: not known to be submitted, and it may still run \(it has no idempotency key: sent again, it may run twice\)$/),
        expect.stringMatching(/^error: line 1002: .*not known to be submitted \(sending it again with its idempotency key to this same node is safe/)
      ])
      // a node not there from the start: one line, not one a task
      server.close()
      const none = await runCli(['submit', '--api', api, '--bulk', file])
      expect(none.code).toBe(1)
      expect(none.stdout).toBe('')
      expect(none.stderr.trim().split('\n')).toEqual([expect.stringMatching(/no node answers at/)])
    } finally {
      server.close()
    }
  })

  it('stops cleanly on SIGHUP too (the terminal that started it closed): exit 0, node.json gone', async () => {
    const dir = await tmp()
    const d = await start(dir, 'h')
    const nodeFile = join(dir, 'h', 'node.json')
    expect(existsSync(nodeFile)).toBe(true)
    d.proc.kill('SIGHUP')
    expect(await d.exited).toBe(0)
    expect(d.output()).toMatch(/SIGHUP: stopping/)
    expect(existsSync(nodeFile)).toBe(false)
  })

  it('gives a start that hangs past a signal stopTimeoutMs from the config file, then exits 1', async () => {
    const dir = await tmp()
    const marker = join(dir, 'mcp-running')
    // the start waits on an MCP server that never answers (its connect timeout is 30 s)
    await writeFile(join(dir, 'config.json'), JSON.stringify({ stopTimeoutMs: 2_000, http: { closeGraceMs: 1_000 }, mcpServers: { silent: { command: process.execPath, args: [join(import.meta.dirname, '..', 'fixtures', 'silent-mcp-server.mjs'), marker] } } }))
    const proc = spawn(process.execPath, [BIN, 'node', '--data', join(dir, 'd'), '--api', '127.0.0.1:0', '--agents', 'none', '--config', join(dir, 'config.json')], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    proc.stderr.on('data', d => { stderr += String(d) })
    // 'close', not 'exit': stderr is read to its end
    const exited = once(proc, 'close')
    try {
      await waitFor(() => existsSync(marker), { timeoutMs: 20_000, what: 'the start to reach the MCP server' })
      proc.kill('SIGTERM')
      const [code] = await exited as [number | null]
      expect(code).toBe(1)
      expect(stderr).toMatch(/SIGTERM during start-up, and the start did not end within 2000 ms: exiting now/)
    } finally {
      proc.kill('SIGKILL')
    }
  })
})

describe('a daemon stopped while an MCP client waits on a call', () => {
  const tmp = useTmpDirs()

  it('answers the call at once that its task carries on, where the client waited for its own timeout (60 s)', async () => {
    const dir = await tmp()
    const daemon = await startDaemon(await resolveDaemonConfig({ data: join(dir, 'd'), api: '127.0.0.1:0', agents: 'sleep' }, {}))
    const client = new Client({ name: 'stop-test', version: '1.0.0' })
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`${daemon.api.url}/mcp`)))
      const progress: string[] = []
      const call = client.callTool({ name: 'sleep', arguments: { ms: 60_000 } }, undefined, { onprogress: p => { progress.push(String(p.message)) } })
        .then(r => r as CallToolResult, (err: Error) => err)
      await waitFor(() => progress.some(m => m.startsWith('submitted as task')), { what: 'the call to submit its task', timeoutMs: 20_000 })
      const stopped = daemon.stop()
      const answer = await Promise.race([call, new Promise(resolve => setTimeout(() => { resolve('no answer within 15 s') }, 15_000))]) as CallToolResult | Error | string
      await stopped
      expect(answer).toMatchObject({ isError: true })
      const text = (answer as CallToolResult).content.flatMap(c => c.type === 'text' ? [c.text] : []).join('\n')
      const id = progress[0]?.replace('submitted as task ', '')
      expect(text).toBe(`the node answering this call is stopping; task ${id} carries on: read it with GET /v1/tasks/${id}/result on any node of the mesh`)
    } finally {
      await client.close().catch(() => {})
      await daemon.stop()
    }
  })
})

describe('a daemon killed while an MCP client waits on a call', () => {
  const tmp = useTmpDirs()
  const start = useDaemons(['--agents', 'sleep'])

  it('fails the call at once: a call without progress is answered as one JSON body, so the kill breaks the exchange, where a cut event stream left the client waiting for its own timeout (60 s)', async () => {
    const daemon = await start(await tmp(), 'd')
    const client = new Client({ name: 'kill-test', version: '1.0.0' })
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`${daemon.api}/mcp`)))
      const call = client.callTool({ name: 'sleep', arguments: { ms: 60_000 } }).then(r => r as CallToolResult, (err: Error) => err)
      await waitFor(async () => (await getJson(`${daemon.api}/v1/tasks?state=running`)).tasks.length === 1, { what: 'the call\'s task to run', timeoutMs: 20_000 })
      daemon.proc.kill('SIGKILL')
      const answer = await Promise.race([call, new Promise(resolve => setTimeout(() => { resolve('no answer within 15 s') }, 15_000))])
      expect(answer).toBeInstanceOf(Error)
    } finally {
      await client.close().catch(() => {})
    }
  })

  it('a call whose connection closes cancels its task, answered as JSON or streamed', async () => {
    const daemon = await start(await tmp(), 'd')
    for (const meta of [{}, { _meta: { progressToken: 1 } }]) {
      const closing = new AbortController()
      const call = fetch(`${daemon.api}/mcp`, { method: 'POST', signal: closing.signal, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'sleep', arguments: { ms: 60_000 }, ...meta } }) }).then(async res => await res.text()).catch((err: Error) => err)
      let id = ''
      await waitFor(async () => { id = (await getJson(`${daemon.api}/v1/tasks?state=running`)).tasks[0]?.id ?? ''; return id !== '' }, { what: 'the call\'s task to run', timeoutMs: 20_000 })
      closing.abort()
      expect(await call).toMatchObject({ name: 'AbortError' })
      await waitFor(async () => (await getJson(`${daemon.api}/v1/tasks/${id}`)).state === 'canceled', { what: `task ${id} canceled once its call's connection closed`, timeoutMs: 20_000 })
    }
  })
})
