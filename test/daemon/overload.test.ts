import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { createTestnet } from '../../sim/testnet.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'

/** A request to the daemon's API: status, the Retry-After header and the parsed body. */
async function post (api: string, path: string, body: unknown): Promise<{ status: number, retryAfter: string | null, json: any }> {
  const res = await fetch(`${api}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: await res.json() }
}

describe('a node past maxUnfinishedTasks (a real daemon)', () => {
  let dir: string
  let d: DaemonProcess

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-overload-'))
    const config = join(dir, 'config.json')
    // nobody runs `queued`: what is submitted stays unfinished; `sleep` is a skill the A2A door takes
    await writeFile(config, JSON.stringify({ tasks: { ...FAST_TASKS, maxUnfinishedTasks: 3, retryAfterMs: 1_000 } }))
    d = await startDaemonProcess(['--data', join(dir, 'n'), '--api', '127.0.0.1:0', '--config', config, '--agents', 'sleep'])
  })
  afterAll(async () => {
    d?.proc.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses new submits with 429 and Retry-After, keeps answering known ones, and takes them again once a task ends', async () => {
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const ok = await post(d.api, '/v1/tasks', { capability: 'queued', input: { i }, idempotencyKey: `k${i}` })
      expect(ok.status).toBe(202)
      ids.push(ok.json.id)
    }
    const refused = await post(d.api, '/v1/tasks', { capability: 'queued', input: { i: 3 } })
    expect(refused).toMatchObject({ status: 429, retryAfter: '1', json: { error: { name: 'OVERLOADED' } } })
    expect(refused.json.error.message).toContain('maxUnfinishedTasks')
    expect((await post(d.api, '/v1/tasks', [{ capability: 'queued', input: { i: 4 } }])).status).toBe(429)
    expect((await post(d.api, '/v1/tasks?wait=100', { capability: 'queued', input: { i: 5 } })).status).toBe(429)
    // the A2A door answers as JSON-RPC does (HTTP 200, an error), with Retry-After; 1.0 names the wait in the error too
    const message = { messageId: 'over', role: 'ROLE_USER', parts: [{ data: { ms: 1 } }], metadata: { skill: 'sleep' } }
    const a2a = await fetch(`${d.api}/a2a`, { method: 'POST', headers: { 'content-type': 'application/json', 'A2A-Version': '1.0' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message } }) })
    expect({ status: a2a.status, retryAfter: a2a.headers.get('retry-after') }).toEqual({ status: 200, retryAfter: '1' })
    expect(await a2a.json()).toMatchObject({ id: 1, error: { code: -32603, message: expect.stringMatching(/^OverloadedError: .*maxUnfinishedTasks/), data: [{ metadata: { meshError: 'OverloadedError', retryAfterMs: '1000' } }] } })
    const legacy = await post(d.api, '/a2a', { jsonrpc: '2.0', id: 2, method: 'message/send', params: { message: { kind: 'message', role: 'user', messageId: 'over-0.3', parts: [{ kind: 'data', data: { ms: 1 } }], metadata: { skill: 'sleep' } } } })
    expect(legacy).toMatchObject({ status: 200, retryAfter: '1', json: { id: 2, error: { code: -32603, message: expect.stringMatching(/^OverloadedError: /) } } })
    // a stream refused before its first event is a plain answer, with Retry-After too
    const streamed = await post(d.api, '/a2a', { jsonrpc: '2.0', id: 3, method: 'message/stream', params: { message: { kind: 'message', role: 'user', messageId: 'over-stream', parts: [{ kind: 'data', data: { ms: 1 } }], metadata: { skill: 'sleep' } } } })
    expect(streamed).toMatchObject({ status: 200, retryAfter: '1', json: { id: 3, error: { code: -32603, message: expect.stringMatching(/^OverloadedError: /) } } })
    // a known idempotency key is an answer, not a new task: alone or in an array
    expect(await post(d.api, '/v1/tasks', { capability: 'queued', input: { i: 0 }, idempotencyKey: 'k0' })).toMatchObject({ status: 200, json: { id: ids[0] } })
    const known = await post(d.api, '/v1/tasks', [0, 1].map(i => ({ capability: 'queued', input: { i }, idempotencyKey: `k${i}` })))
    expect(known).toMatchObject({ status: 202, json: { tasks: [{ id: ids[0], created: false }, { id: ids[1], created: false }] } })
    expect((await (await fetch(`${d.api}/v1/metrics`)).json()).tasks.overloaded).toBe(6)
    // `submit --bulk` waits out the Retry-After and sends the batch again: a canceled task frees a place meanwhile
    const file = join(dir, 'bulk.jsonl')
    await writeFile(file, JSON.stringify({ capability: 'queued', input: { i: 7 } }) + '\n')
    const cli = runCli(['submit', '--bulk', file, '--api', d.api])
    await waitFor(async () => (await (await fetch(`${d.api}/v1/metrics`)).json()).tasks.overloaded >= 4, { what: 'the CLI\'s first batch refused' })
    expect((await post(d.api, `/v1/tasks/${ids[1]!}/cancel`, {})).status).toBe(200)
    const done = await cli
    expect(done.code, done.stderr).toBe(0)
    expect(done.stdout.trim()).toMatch(/^[0-9a-f]{64}$/)
  })
})

describe('the submit limit in the task layer', () => {
  const tmp = useTmpDirs()
  it('lets an agent\'s subtasks through (refusing one would fail its parent\'s attempt), and counts only tasks of this node\'s placements', async () => {
    const net = await createTestnet(1, { baseDir: await tmp(), tasks: { ...FAST_TASKS, maxUnfinishedTasks: 1, agents: [] } })
    try {
      const s = net.nodes[0]!.tasks!.service
      // more new tasks in one bulk than the node ever holds: no retry could be let in, so no Retry-After
      const tooMany = await s.submitMany([{ capability: 'queued', input: 'one' }, { capability: 'queued', input: 'two' }]).catch(e => e)
      expect(tooMany.name).toBe('InvalidTaskError')
      expect(tooMany.message).toMatch(/^2 new tasks in one request, more than this node holds unfinished at once \(maxUnfinishedTasks 1\): send at most 1 a request$/)
      const { id } = await s.submit({ capability: 'queued', input: 'parent' })
      const refused = await s.submit({ capability: 'queued', input: 'another' }).catch(e => e)
      expect(refused.message).toMatch(/a new one would pass it, retry later$/)
      expect(refused.name).toBe('OverloadedError')
      expect(refused.retryAfterMs).toBe(FAST_TASKS.retryAfterMs ?? 1_000)
      // a subtask, alone or in a bulk submit, passes
      expect((await s.submit({ capability: 'queued', input: 'child', parent: id })).created).toBe(true)
      expect(await s.submitMany([{ capability: 'queued', input: 'child 2', parent: id }])).toMatchObject([{ created: true }])
      expect(net.nodes[0]!.tasks!.replica.activeHere).toBe(3)
    } finally {
      await net.stop()
    }
  })

  it('refuses a submit past maxSubmitsInFlight being stored at once, at once and counted; subtasks pass, and later ones are taken', async () => {
    const net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, maxSubmitsInFlight: 2, agents: [] } })
    try {
      await net.ready()
      const s = net.nodes[0]!.tasks!.service
      const { id: parent } = await s.submit({ capability: 'queued', input: 'parent' })
      const answers = await Promise.allSettled([
        ...Array.from({ length: 8 }, async (_, i) => s.submit({ capability: 'queued', input: i })),
        s.submitMany([{ capability: 'queued', input: 'bulk' }]),
        s.submit({ capability: 'queued', input: 'child', parent })
      ])
      const refused = answers.filter(a => a.status === 'rejected').map(a => (a as PromiseRejectedResult).reason)
      // two of the eight are stored; the other six, and the bulk, are refused before any work
      expect(refused).toHaveLength(7)
      expect(refused.every(e => e.name === 'OverloadedError' && e.message.includes('maxSubmitsInFlight'))).toBe(true)
      expect(answers.at(-1)!.status).toBe('fulfilled')
      expect(net.nodes[0]!.tasks!.service.stats.overloadedInFlight).toBe(7)
      expect((await s.submit({ capability: 'queued', input: 'later' })).created).toBe(true)
    } finally {
      await net.stop()
    }
  })
})
