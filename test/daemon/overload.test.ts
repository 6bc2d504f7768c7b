import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDaemonProcess } from '../../sim/daemon-process.js'
import { FAST_TASKS } from '../helpers/fast.js'
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
    // nobody runs `queued`: what is submitted stays unfinished
    await writeFile(config, JSON.stringify({ tasks: { ...FAST_TASKS, maxUnfinishedTasks: 3, retryAfterMs: 2_500 } }))
    d = await startDaemonProcess(['--data', join(dir, 'n'), '--api', '127.0.0.1:0', '--config', config, '--agents', 'none'])
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
    expect(refused).toMatchObject({ status: 429, retryAfter: '3', json: { error: { name: 'OVERLOADED' } } })
    expect(refused.json.error.message).toContain('maxUnfinishedTasks')
    expect((await post(d.api, '/v1/tasks', [{ capability: 'queued', input: { i: 4 } }])).status).toBe(429)
    expect((await post(d.api, '/v1/tasks?wait=100', { capability: 'queued', input: { i: 5 } })).status).toBe(429)
    // a known idempotency key is an answer, not a new task
    expect(await post(d.api, '/v1/tasks', { capability: 'queued', input: { i: 0 }, idempotencyKey: 'k0' })).toMatchObject({ status: 200, json: { id: ids[0] } })
    const metrics = await (await fetch(`${d.api}/v1/metrics`)).json()
    expect(metrics.tasks.overloaded).toBe(3)
    // the node is still whole: a canceled task frees a place
    expect((await post(d.api, `/v1/tasks/${ids[1]!}/cancel`, {})).status).toBe(200)
    expect((await post(d.api, '/v1/tasks', { capability: 'queued', input: { i: 6 } })).status).toBe(202)
  })
})
