import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { call } from '../helpers/api.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))
const ID = /^[0-9a-f]{64}$/

/** `agentmesh ARGS` with `stdin` written to its standard input (runCli gives none). */
async function runCliWithStdin (args: string[], stdin: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  child.stdin.end(stdin)
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

async function completed (api: string, id: string): Promise<boolean> {
  return (await call(api, 'GET', `/v1/tasks/${id}/result?wait=10000`)).json.state === 'completed'
}

describe('bulk submit over the API and the CLI', () => {
  let dir: string
  let a: DaemonProcess
  let b: DaemonProcess

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-bulk-'))
    const config = join(dir, 'config.json')
    await writeFile(config, JSON.stringify({ tasks: FAST_TASKS }))
    // sleep too, a capability whose input has a schema: on a, whose own presence is always live, the check never waits on a peer's
    a = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--config', config, '--agents', 'echo,sleep'])
    b = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0', '--config', config, '--bootstrap', a.addrs[0] as string, '--agents', 'echo'])
    await waitFor(async () => (await call(a.api, 'GET', '/v1/capabilities')).json.capabilities.some((c: any) => c.name === 'echo' && c.peers.length === 2), { what: 'a to see both peers offer echo' })
  })
  afterAll(async () => {
    a?.proc.kill('SIGKILL')
    b?.proc.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  it('answers an array with 202 and one entry per task in request order, a bad task getting its own error', async () => {
    const { status, json } = await call(a.api, 'POST', '/v1/tasks', [
      { capability: 'echo', input: { n: 0 } },
      { capability: 'echo', input: 1, priority: 9 },
      { capability: 'has spaces', input: 2 },
      { capability: 'echo', input: { n: 3 }, idempotencyKey: 'bulk-k' },
      { capability: 'echo', input: 'x'.repeat(1_100_000) },
      { capability: 'nobody.offers.this', input: 5 }
    ])
    expect(status).toBe(202)
    expect(json.tasks).toHaveLength(6)
    expect(json.tasks[0]).toEqual({ id: expect.stringMatching(ID), created: true })
    expect(json.tasks[1]).toEqual({ error: { name: 'BAD_REQUEST', message: expect.stringMatching(/^tasks\[1\]: .*priority/) } })
    expect(json.tasks[2]).toEqual({ error: { name: 'BAD_REQUEST', message: expect.stringMatching(/^tasks\[2\]: invalid capability/) } })
    expect(json.tasks[3]).toEqual({ id: expect.stringMatching(ID), created: true })
    expect(json.tasks[4]).toEqual({ error: { name: 'PAYLOAD_TOO_LARGE', message: expect.stringMatching(/^tasks\[4\]: .*exceeds the limit/) } })
    expect(json.tasks[5]).toMatchObject({ id: expect.stringMatching(ID), created: true, warning: expect.stringMatching(/no live peer offers/) })
    for (const i of [0, 3]) expect(await completed(b.api, json.tasks[i].id)).toBe(true)
    expect((await call(b.api, 'GET', `/v1/tasks/${String(json.tasks[0].id)}/result`)).json.result).toEqual({ n: 0 })
    // the same key again, alone or in a batch: the existing task
    const again = await call(a.api, 'POST', '/v1/tasks', [{ capability: 'echo', input: { n: 3 }, idempotencyKey: 'bulk-k' }])
    expect(again).toEqual({ status: 202, json: { tasks: [{ id: json.tasks[3].id, created: false }] } })
    // a key repeated within one batch with other options names the first entry's task: refused
    const twice = await call(a.api, 'POST', '/v1/tasks', [{ capability: 'echo', input: 'k2', idempotencyKey: 'bulk-k2', maxAttempts: 2 }, { capability: 'echo', input: 'k2', idempotencyKey: 'bulk-k2', maxAttempts: 3 }, { capability: 'echo', input: 'k2', idempotencyKey: 'bulk-k2' }])
    expect(twice.json.tasks[0]).toEqual({ id: expect.stringMatching(ID), created: true })
    expect(twice.json.tasks[1]).toEqual({ error: { name: 'IDEMPOTENCY_CONFLICT', message: expect.stringMatching(/^tasks\[1\]: .*maxAttempts 2 \(asked 3\)/) } })
    expect(twice.json.tasks[2]).toEqual({ id: twice.json.tasks[0].id, created: false })
  })

  it('refuses an input that the capability\'s schema does not take before any task is made, alone (400) or in a batch (its own error), as the MCP and A2A doors do', async () => {
    const before = (await call(a.api, 'GET', '/v1/metrics')).json.api.badRequests['invalid-task'] ?? 0
    const alone = await call(a.api, 'POST', '/v1/tasks', { capability: 'sleep', input: 1 })
    expect(alone.status).toBe(400)
    expect(alone.json.error).toMatchObject({ name: 'BAD_REQUEST', message: expect.stringMatching(/^invalid input for sleep: .*\(GET \/v1\/capabilities shows what it takes\)$/) })
    expect((await call(a.api, 'GET', '/v1/metrics')).json.api.badRequests['invalid-task']).toBe(before + 1)
    const batch = await call(a.api, 'POST', '/v1/tasks', [{ capability: 'sleep', input: { ms: 'long' } }, { capability: 'sleep', input: { ms: 1 } }])
    expect(batch.status).toBe(202)
    expect(batch.json.tasks[0]).toEqual({ error: { name: 'BAD_REQUEST', message: expect.stringMatching(/^tasks\[0\]: invalid input for sleep: ms: /) } })
    expect(await completed(a.api, batch.json.tasks[1].id)).toBe(true)
    // nothing was made of the refused ones: this node holds no sleep task but the one that ran
    const held = (await call(a.api, 'GET', '/v1/tasks?capability=sleep')).json.tasks
    expect(held.map((t: any) => t.id)).toEqual([batch.json.tasks[1].id])
  })

  it.each([
    ['an empty array', []],
    ['an array over 1,000 tasks', Array.from({ length: 1_001 }, (_, i) => ({ capability: 'echo', input: i }))]
  ])('refuses %s as a whole with 400', async (_what, body) => {
    const res = await call(a.api, 'POST', '/v1/tasks', body)
    expect(res.status).toBe(400)
    expect(res.json.error).toMatchObject({ name: 'BAD_REQUEST', message: expect.stringMatching(/task/) })
  })

  it('keeps a lone submit as it was', async () => {
    const res = await call(a.api, 'POST', '/v1/tasks', { capability: 'echo', input: 'alone' })
    expect(res.status).toBe(202)
    expect(Object.keys(res.json)).toEqual(['id'])
  })

  it('submits a JSON Lines file and a JSON array on stdin with --bulk, one line per task, exit 1 if any failed', async () => {
    const file = join(dir, 'tasks.jsonl')
    await writeFile(file, [
      JSON.stringify({ capability: 'echo', input: 'one' }),
      '',
      JSON.stringify({ capability: 'echo', input: 'two', maxAttempts: 2, timeoutMs: 5_000 })
    ].join('\n'))
    const ok = await runCli(['submit', '--api', a.api, '--bulk', file])
    expect(ok.code).toBe(0)
    const ids = ok.stdout.trim().split('\n')
    expect(ids).toHaveLength(2)
    for (const id of ids) {
      expect(id).toMatch(ID)
      expect(await completed(a.api, id)).toBe(true)
    }

    const mixed = await runCliWithStdin(['submit', '--api', a.api, '--bulk', '-'], JSON.stringify([{ capability: 'echo', input: 3 }, { capability: 5 }, { capability: 'echo', input: 5 }]))
    expect(mixed.code).toBe(1)
    const lines = mixed.stdout.trim().split('\n')
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(ID)
    // two problems of one task: each named without the request's own (0-based) numbering
    expect(lines[1]).toMatch(/^error: task 2: capability: .*; input: /)
    expect(lines[1]).not.toMatch(/tasks\[/)
    expect(lines[2]).toMatch(ID)
    expect(mixed.stderr).toMatch(/1 of 3 tasks not submitted/)
    // after a blank line the output's lines no longer match the file's: an error names its line
    const jsonl = await runCliWithStdin(['submit', '--api', a.api, '--bulk', '-'], [JSON.stringify({ capability: 'echo', input: 1 }), '', JSON.stringify({ capability: 'echo' })].join('\n'))
    expect(jsonl.code).toBe(1)
    expect(jsonl.stdout.trim().split('\n')[1]).toMatch(/^error: line 3: input/)

    const raw = await runCli(['submit', '--api', a.api, '--bulk', file, '--json'])
    expect(raw.code).toBe(0)
    expect(JSON.parse(raw.stdout).tasks).toEqual([{ id: expect.stringMatching(ID), created: true }, { id: expect.stringMatching(ID), created: true }])
  })

  it('sends a file over the API\'s 1,000 tasks in several requests, and says a warning once', async () => {
    const file = join(dir, 'many.json')
    await writeFile(file, JSON.stringify(Array.from({ length: 1_001 }, (_, i) => ({ capability: 'nobody.offers.this', input: i }))))
    const r = await runCli(['submit', '--api', a.api, '--bulk', file], { timeoutMs: 60_000 })
    expect(r.code).toBe(0)
    const ids = r.stdout.trim().split('\n')
    expect(ids).toHaveLength(1_001)
    expect(new Set(ids).size).toBe(1_001)
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/warning: no live peer offers nobody\.offers\.this/)])
  })

  it.each([
    [['--bulk', '/nonexistent/tasks.json'], /cannot read bulk file/],
    [['--bulk', 'BADFILE'], /line 2 is not JSON/],
    [['--bulk', 'BADFILE', '--capability', 'echo'], /--bulk takes the tasks' fields from its file, not --capability/],
    [['--input', '1'], /required option '--capability <name>' not specified/]
  ])('%j fails with one clear line', async (args, pattern) => {
    const bad = join(dir, 'bad.jsonl')
    await writeFile(bad, '{"capability":"echo","input":1}\n{oops\n')
    const r = await runCli(['submit', '--api', a.api, ...args.map(x => x === 'BADFILE' ? bad : x)])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(pattern)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  // last: it kills b
  it('names the id of each task a majority did not store, in the API\'s entry and the CLI\'s line: a member that stored it may still run it', async () => {
    b.proc.kill('SIGKILL')
    await b.exited
    // every placement is a and b: a stores each task, b cannot
    const answer = await call(a.api, 'POST', '/v1/tasks', [{ capability: 'echo', input: 'short of a majority' }])
    expect(answer.status).toBe(202)
    const [entry] = answer.json.tasks
    expect(entry.error.name).toBe('QUORUM_UNAVAILABLE')
    expect(entry.id).toMatch(ID)
    const r = await runCliWithStdin(['submit', '--api', a.api, '--bulk', '-'], '{"capability":"echo","input":"by the CLI"}\n')
    expect(r.code).toBe(1)
    expect(r.stdout.trim()).toMatch(/^error: line 1: task stored on .* \(task [0-9a-f]{64}\)$/)
  })
})
