import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { useTmpDirs } from '../helpers/tmp.js'
import { call } from '../helpers/api.js'
import { certificateSchema, resultHash, verifyCertificate } from '../../protocols/task/index.js'
import type { AddressInfo } from 'node:net'
import type { DaemonProcess } from '../../sim/daemon-process.js'

const AGENT_MODULE = fileURLToPath(new URL('../fixtures/reverse-agent.mjs', import.meta.url))

describe('task API and CLI on real daemons', () => {
  const tmp = useTmpDirs()
  let dir: string
  let a: DaemonProcess
  let b: DaemonProcess

  beforeAll(async () => {
    const { mkdtemp } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-api-'))
    const config = join(dir, 'config.json')
    await writeFile(config, JSON.stringify({ tasks: FAST_TASKS }))
    a = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--config', config, '--agents', 'echo,sleep,fail'])
    b = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0', '--config', config, '--bootstrap', a.addrs[0] as string, '--agents', 'none', '--agents-module', AGENT_MODULE])
    expect(b.output()).toMatch(/^capabilities: text\.reverse$/m)
    await waitFor(async () => (await call(a.api, 'GET', '/v1/capabilities')).json.capabilities.some((c: any) => c.name === 'text.reverse'), { what: 'a to see b\'s capability' })
  })
  afterAll(async () => {
    a?.proc.kill('SIGKILL')
    b?.proc.kill('SIGKILL')
    const { rm } = await import('node:fs/promises')
    await rm(dir, { recursive: true, force: true })
  })

  it('submits (202, then 200 for the same idempotency key) and long-polls the result', async () => {
    const first = await call(a.api, 'POST', '/v1/tasks', { capability: 'echo', input: { n: 1 }, idempotencyKey: 'k1', timeoutMs: 45_000, deadlineMs: 600_000 })
    expect(first.status).toBe(202)
    expect(first.json.id).toMatch(/^[0-9a-f]{64}$/)
    const again = await call(a.api, 'POST', '/v1/tasks', { capability: 'echo', input: { n: 1 }, idempotencyKey: 'k1' })
    expect(again).toEqual({ status: 200, json: { id: first.json.id } })
    const same = await call(a.api, 'POST', '/v1/tasks', { capability: 'echo', input: { n: 1 }, idempotencyKey: 'k1', timeoutMs: 45_000, deadlineMs: 600_000 })
    expect(same).toEqual({ status: 200, json: { id: first.json.id } })
    // the key names the first task: a retry asking for other options is refused, not answered with it
    const other = await call(a.api, 'POST', '/v1/tasks', { capability: 'echo', input: { n: 1 }, idempotencyKey: 'k1', timeoutMs: 5_000, maxAttempts: 7 })
    expect(other.status).toBe(422)
    expect(other.json.error.name).toBe('IDEMPOTENCY_CONFLICT')
    expect(other.json.error.message).toContain('timeoutMs 45000 (asked 5000)')
    expect(other.json.error.message).toContain('maxAttempts')
    const inBulk = await call(a.api, 'POST', '/v1/tasks', [{ capability: 'echo', input: { n: 1 }, idempotencyKey: 'k1' }, { capability: 'echo', input: { n: 1 }, idempotencyKey: 'k1', deadlineMs: 5_000 }])
    expect(inBulk.json.tasks[0]).toEqual({ id: first.json.id, created: false })
    expect(inBulk.json.tasks[1].error).toMatchObject({ name: 'IDEMPOTENCY_CONFLICT', message: expect.stringContaining('deadlineMs 600000 (asked 5000)') })
    const result = await call(b.api, 'GET', `/v1/tasks/${String(first.json.id)}/result?wait=10000`)
    expect(result).toEqual({ status: 200, json: { id: first.json.id, state: 'completed', result: { n: 1 } } })
    const task = await call(b.api, 'GET', `/v1/tasks/${String(first.json.id)}`)
    expect(task.json).toMatchObject({ state: 'completed', attempts: 1, executor: a.peerId, capability: 'echo', timeoutMs: 45_000, idempotencyKey: 'k1' })
    expect(task.json.createdAt).toBeLessThanOrEqual(task.json.finishedAt)
    expect(task.json.deadline).toBe(task.json.createdAt + 600_000)
    // the certificate shown is the stored one: a majority of the placement's signatures over this result
    const cert = certificateSchema.parse(task.json.certificate)
    expect(cert).toMatchObject({ id: first.json.id, generation: 0, epoch: task.json.placement.epoch, value: { state: 'completed', claimId: task.json.claimId, resultHash: resultHash({ n: 1 }) } })
    expect(cert.votes.length).toBeGreaterThanOrEqual(Math.floor(task.json.placement.members.length / 2) + 1)
    expect(() => { verifyCertificate(cert, task.json.placement.members) }).not.toThrow()
    expect(task.json.certificateMembers).toEqual(task.json.placement.members)
    const unfinished = await call(a.api, 'POST', '/v1/tasks', { capability: 'nobody.offers.this', input: {} })
    expect(unfinished.status).toBe(202)
    const pending = await call(a.api, 'GET', `/v1/tasks/${String(unfinished.json.id)}`)
    expect(pending.json.state).toBe('pending')
    expect(pending.json).not.toHaveProperty('certificate')
  })

  it('runs a user agent from --agents-module on the other node', async () => {
    const { json } = await call(a.api, 'POST', '/v1/tasks', { capability: 'text.reverse', input: 'mesh' })
    const result = await call(a.api, 'GET', `/v1/tasks/${String(json.id)}/result?wait=10000`)
    expect(result.json).toMatchObject({ state: 'completed', result: 'hsem' })
  })

  it('submits and waits in one request with ?wait=MS, answering as the result does', async () => {
    const done = await call(a.api, 'POST', '/v1/tasks?wait=10000', { capability: 'text.reverse', input: 'wait', idempotencyKey: 'w1' })
    expect(done).toMatchObject({ status: 200, json: { id: expect.stringMatching(/^[0-9a-f]{64}$/), state: 'completed', result: 'tiaw' } })
    const again = await call(a.api, 'POST', '/v1/tasks?wait=', { capability: 'text.reverse', input: 'wait', idempotencyKey: 'w1' })
    expect(again).toMatchObject({ status: 200, json: { id: done.json.id, state: 'completed', result: 'tiaw' } })
    // a wait of any number of digits is capped by maxWaitMs, as a long one is, not refused
    const huge = await call(a.api, 'POST', `/v1/tasks?wait=${'9'.repeat(20)}`, { capability: 'text.reverse', input: 'wait', idempotencyKey: 'w1' })
    expect(huge).toMatchObject({ status: 200, json: { id: done.json.id, state: 'completed' } })
    const died = await call(a.api, 'POST', '/v1/tasks?wait=10000', { capability: 'fail', input: { times: 9, message: 'no wait' }, maxAttempts: 1 })
    expect(died).toMatchObject({ status: 200, json: { state: 'dead', lastError: expect.stringMatching(/no wait/) } })
    const pending = await call(a.api, 'POST', '/v1/tasks?wait=200', { capability: 'nobody.offers.this', input: 'w' })
    expect(pending).toMatchObject({ status: 202, json: { state: 'pending', warning: expect.stringMatching(/no live peer offers/) } })
    for (const [path, body] of [['/v1/tasks?wait=-1', { capability: 'echo', input: 1 }], ['/v1/tasks?wait=soon', { capability: 'echo', input: 1 }], ['/v1/tasks?wait=100', [{ capability: 'echo', input: 2 }]]] as const) {
      const refused = await call(a.api, 'POST', path, body)
      expect(refused).toMatchObject({ status: 400, json: { error: { name: 'BAD_REQUEST', message: expect.stringMatching(/wait/) } } })
    }
  })

  it('accepts a capability nobody offers, with a warning, and answers 202 while it waits', async () => {
    const { status, json } = await call(a.api, 'POST', '/v1/tasks', { capability: 'nobody.offers.this', input: null })
    expect(status).toBe(202)
    expect(json.warning).toMatch(/no live peer offers/)
    const pending = await call(a.api, 'GET', `/v1/tasks/${String(json.id)}/result?wait=200`)
    expect(pending).toMatchObject({ status: 202, json: { state: 'pending' } })
    // a retry of the same key (its first answer lost) is warned too, with and without a wait
    const keyed = { capability: 'nobody.offers.this', input: 'keyed', idempotencyKey: 'unoffered-1' }
    const first = await call(a.api, 'POST', '/v1/tasks', keyed)
    expect(first).toMatchObject({ status: 202, json: { warning: expect.stringMatching(/no live peer offers/) } })
    for (const path of ['/v1/tasks', '/v1/tasks?wait=100']) {
      const again = await call(a.api, 'POST', path, keyed)
      expect(again).toMatchObject({ status: path === '/v1/tasks' ? 200 : 202, json: { id: first.json.id, warning: expect.stringMatching(/no live peer offers/) } })
    }
  })

  it.each([
    ['not JSON', '{oops', 400],
    ['no capability', { input: 1 }, 400],
    ['a bad capability', { capability: 'has spaces', input: 1 }, 400],
    ['an unknown field', { capability: 'echo', input: 1, priority: 9 }, 400],
    ['a bad maxAttempts', { capability: 'echo', input: 1, maxAttempts: 0 }, 400],
    ['an input over 1 MiB', { capability: 'echo', input: 'x'.repeat(1_100_000) }, 413],
    ['a body over 2 MiB', { capability: 'echo', input: 'x'.repeat(2_200_000) }, 413]
  ])('refuses %s with %i and a reason', async (_what, body, status) => {
    const res = await call(a.api, 'POST', '/v1/tasks', body)
    expect(res.status).toBe(status)
    expect(res.json.error.message.length).toBeGreaterThan(5)
    expect((await call(a.api, 'GET', '/v1/health')).json.ok).toBe(true)
  })

  it('takes a body as large as the node\'s maxInputBytes allows, past the default 2 MiB', async () => {
    const config = join(dir, 'big-inputs.json')
    await writeFile(config, JSON.stringify({ tasks: { ...FAST_TASKS, maxInputBytes: 3_000_000 } }))
    const big = await startDaemonProcess(['--data', join(dir, 'big'), '--api', '127.0.0.1:0', '--config', config, '--agents', 'none'])
    try {
      // a node configured for larger inputs answered 413 to every one over 2 MiB
      expect((await call(big.api, 'POST', '/v1/tasks', { capability: 'echo', input: 'x'.repeat(2_500_000) })).status).toBe(202)
      expect((await call(big.api, 'POST', '/v1/tasks', { capability: 'echo', input: 'x'.repeat(3_100_000) })).status).toBe(413)
    } finally {
      big.proc.kill('SIGKILL')
      await big.exited
    }
  })

  it('answers 404 for an unknown task and 400 for a malformed id or filter', async () => {
    expect((await call(a.api, 'GET', `/v1/tasks/${'a'.repeat(64)}`)).status).toBe(404)
    expect((await call(a.api, 'GET', '/v1/tasks/not-an-id')).status).toBe(400)
    expect((await call(a.api, 'GET', '/v1/tasks?state=bogus')).status).toBe(400)
    // a misspelt filter is refused, not ignored (the listing came back unfiltered)
    for (const [path, message] of [
      ['/v1/tasks?stat=running', 'unknown query parameter "stat": GET /v1/tasks takes state, capability, parent, idPrefix, limit'],
      ['/v1/tasks?state%5B%5D=running', 'unknown query parameter "state[]": GET /v1/tasks takes state, capability, parent, idPrefix, limit'],
      ['/v1/health?verbose=1', 'unknown query parameter "verbose": GET /v1/health takes none']
    ] as const) {
      const bad = await call(a.api, 'GET', path)
      expect({ status: bad.status, message: bad.json?.error?.message }).toEqual({ status: 400, message })
    }
    // a parent that is no task id matched nothing (200) where a bad idPrefix was a 400; each named once
    for (const [query, message] of [['parent=zz', 'parent: a task id: 64 lowercase hex digits'], ['idPrefix=XYZ', 'idPrefix: lowercase hex digits']]) {
      const bad = await call(a.api, 'GET', `/v1/tasks?${query}`)
      expect({ status: bad.status, message: bad.json?.error?.message }).toEqual({ status: 400, message })
    }
    const traced = await call(a.api, 'POST', '/v1/tasks', { capability: 'echo', input: 1, traceparent: 'nope' })
    expect({ status: traced.status, message: traced.json?.error?.message }).toMatchObject({ status: 400, message: expect.stringMatching(/^traceparent: 00-<32 hex>/) })
    expect(traced.json.error.message).not.toMatch(/traceparent: traceparent/)
    expect((await call(a.api, 'POST', `/v1/tasks/${'b'.repeat(64)}/cancel`)).status).toBe(404)
    // a bad capability name is quoted in part, with the rule it breaks
    const longName = await call(a.api, 'POST', '/v1/tasks', { capability: `${'x'.repeat(100_000)}!`, input: 1 })
    expect(longName.status).toBe(400)
    expect(longName.json.error.message).toMatch(/^invalid capability "x{80}…" \(100001 characters\): a capability is 1-64 letters/)
    expect(longName.json.error.message.length).toBeLessThan(300)
    // a submit without input says that input is required, not only what JSON may hold
    const missing = await call(a.api, 'POST', '/v1/tasks', { capability: 'echo' })
    expect({ status: missing.status, message: missing.json?.error?.message }).toMatchObject({ status: 400, message: 'input: required: any JSON value (null for none)' })
  })

  it('lists with filters and cancels a running task', async () => {
    const { json } = await call(a.api, 'POST', '/v1/tasks', { capability: 'sleep', input: { ms: 60_000 } })
    await waitFor(async () => (await call(a.api, 'GET', `/v1/tasks/${String(json.id)}`)).json.state === 'running', { what: 'the sleep to start' })
    const running = await call(a.api, 'GET', '/v1/tasks?state=running&capability=sleep')
    expect(running.json.tasks.map((t: any) => t.id)).toContain(json.id)
    expect(running.json.tasks[0].holder).toBe(a.peerId)
    const canceled = await call(b.api, 'POST', `/v1/tasks/${String(json.id)}/cancel`)
    expect(canceled.json).toEqual({ id: json.id, state: 'canceled' })
    const limited = await call(a.api, 'GET', '/v1/tasks?limit=1')
    expect(limited.json.tasks).toHaveLength(1)
    // an empty filter is no filter, as on /v1/events
    const unfiltered = await call(a.api, 'GET', '/v1/tasks?state=&capability=&limit=5')
    expect(unfiltered.status).toBe(200)
    expect(unfiltered.json.tasks.length).toBeGreaterThan(0)
    // a capability filter no task could match is the caller's mistake, as it is in a submit
    for (const bad of ['bad%20cap!', 'a'.repeat(65)]) {
      const refused = await call(a.api, 'GET', `/v1/tasks?capability=${bad}`)
      expect({ status: refused.status, message: refused.json?.error?.message }).toMatchObject({ status: 400, message: expect.stringMatching(/capability/) })
    }
  })

  it('refuses to redrive a task that died past its deadline, which would die again at once', async () => {
    // a capability nobody offers: an echo with a 1 ms deadline is claimed within that millisecond
    // as often as not (an attempt may start up to its deadline), and then it completes
    const { json } = await call(a.api, 'POST', '/v1/tasks', { capability: 'nobody.offers', input: 'too late', deadlineMs: 300 })
    const id = String(json.id)
    let seen: unknown
    await waitFor(async () => { seen = (await call(b.api, 'GET', `/v1/tasks/${id}`)).json?.state; return seen === 'dead' }, { what: () => `the task to die past its deadline (last seen ${String(seen)})`, timeoutMs: 60_000 })
    // the dead-letter list, newest first, a page at a time
    expect((await call(b.api, 'GET', '/v1/deadletter?limit=1')).json.deadLetters.map((d: any) => d.id)).toEqual([id])
    const badCapability = await call(b.api, 'GET', '/v1/tasks?capability=a%20b')
    expect(badCapability.status).toBe(400)
    expect(badCapability.json.error.message).toBe('capability: letters, digits, . _ - (up to 64)')
    // 0, past the most, and not a number at all: one message
    for (const limit of ['0', '10001', '-1']) {
      const bad = await call(b.api, 'GET', `/v1/deadletter?limit=${limit}`)
      expect(bad.status).toBe(400)
      expect(bad.json.error.message).toMatch(/a whole number from 1 to 10000/)
    }
    expect((await runCli(['dlq', 'list', '--limit', '1', '--api', b.api])).stdout).toContain(id)
    const refused = await call(b.api, 'POST', `/v1/deadletter/${id}/redrive`)
    expect({ status: refused.status, name: refused.json.error?.name }).toEqual({ status: 409, name: 'PAST_DEADLINE' })
    expect(refused.json.error.message).toMatch(/deadline passed .*submit it again/)
    const cli = await runCli(['dlq', 'redrive', id, '--api', a.api])
    expect(cli.code).not.toBe(0)
    expect(cli.stderr).toMatch(/deadline passed/)
    // still dead, at its first generation: nothing was redriven
    expect((await call(a.api, 'GET', `/v1/tasks/${id}`)).json).toMatchObject({ state: 'dead', generation: 0 })
  })

  it('drives the same through the CLI: submit --wait, @FILE input, task, tasks, cancel, dlq', async () => {
    const textFile = join(await tmp(), 'text.txt')
    await writeFile(textFile, 'one two two three three three')
    const stats = await runCli(['submit', '--api', a.api, '--capability', 'echo', '--input', `@${textFile}`, '--wait'])
    expect(stats.code).toBe(0)
    expect(JSON.parse(stats.stdout)).toBe('one two two three three three')
    const id = (await runCli(['submit', '--api', a.api, '--capability', 'echo', '--input', '[1,2]', '--idempotency-key', 'cli-key'])).stdout.trim()
    expect(id).toMatch(/^[0-9a-f]{64}$/)
    // a refusal with --json prints the node's answer too: its error's name is what a program tells apart
    const conflict = await runCli(['submit', '--api', a.api, '--capability', 'echo', '--input', '[1,2]', '--idempotency-key', 'cli-key', '--max-attempts', '7', '--json'])
    expect(conflict.code).toBe(1)
    expect(JSON.parse(conflict.stdout)).toMatchObject({ error: { name: 'IDEMPOTENCY_CONFLICT' } })
    expect(conflict.stderr).toMatch(/^agentmesh: POST \/v1\/tasks: /)
    // and so is a refusal the CLI makes itself, with no answer of the node's to print
    const unknown = await runCli(['task', 'ffff', '--api', a.api, '--json'])
    expect({ code: unknown.code, answer: JSON.parse(unknown.stdout) }).toEqual({ code: 1, answer: { error: { name: 'INVALID_CONFIG', message: expect.stringMatching(/^no task starting with ffff/) } } })
    const closed = createServer()
    const port = await new Promise<number>(resolve => closed.listen(0, '127.0.0.1', () => { resolve((closed.address() as AddressInfo).port) }))
    await new Promise(resolve => closed.close(resolve))
    const nobody = await runCli(['status', '--api', `127.0.0.1:${port}`, '--json'])
    expect({ code: nobody.code, name: JSON.parse(nobody.stdout).error.name }).toEqual({ code: 1, name: 'NODE_UNREACHABLE' })
    await waitFor(async () => JSON.parse((await runCli(['task', id, '--api', a.api])).stdout).state === 'completed', { what: 'the task to complete' })
    const list = await runCli(['tasks', '--api', a.api, '--capability', 'echo'])
    expect(list.stdout).toContain(id)
    const failed = await runCli(['submit', '--api', a.api, '--capability', 'fail', '--input', '{"times":9,"message":"out of coffee"}', '--max-attempts', '1', '--wait'])
    expect(failed.code).toBe(1)
    // the outcome and why: the last attempt's own error, not only "failed 1 of 1 attempts"
    expect(failed.stderr).toMatch(/dead: .*out of coffee/)
    const deadId = /task ([0-9a-f]{64})/.exec(failed.stderr)?.[1] as string
    const dlq = await runCli(['dlq', 'list', '--api', b.api])
    expect(dlq.stdout).toContain(deadId)
    // the client options before the subcommand too, as every client command takes them
    expect((await runCli(['dlq', '--data', join(dir, 'b'), 'list'])).stdout).toContain(deadId)
    expect((await runCli(['dlq', 'redrive', deadId, '--api', a.api])).code).toBe(0)
    await waitFor(async () => (await call(a.api, 'GET', `/v1/tasks/${deadId}`)).json.generation === 1 && (await call(a.api, 'GET', `/v1/tasks/${deadId}`)).json.state === 'dead', { what: 'the redriven task to die again' })
    expect((await runCli(['dlq', 'drop', deadId, '--api', a.api])).code).toBe(0)
    expect((await runCli(['dlq', 'list', '--api', a.api])).stdout).not.toContain(deadId)
    // --timeout bounds --wait: alone it would be ignored, so it is refused before anything is submitted
    const unused = await runCli(['submit', '--api', a.api, '--capability', 'echo', '--input', '1', '--timeout', '300'])
    expect(unused.code).toBe(2)
    expect(unused.stderr).toMatch(/--timeout .*--wait/)
    const timedOut = await runCli(['submit', '--api', a.api, '--capability', 'sleep', '--input', '{"ms":60000}', '--wait', '--timeout', '300'])
    expect(timedOut.code).toBe(3)
    const sleepId = /task ([0-9a-f]{64}) (pending|running)/.exec(timedOut.stderr)?.[1] as string
    const cancel = await runCli(['cancel', sleepId, '--api', b.api])
    expect(cancel.stdout.trim()).toBe(`${sleepId} canceled`)
    const bad = await runCli(['submit', '--api', a.api, '--capability', 'echo', '--input', '{not json'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/not valid JSON/)
  })

  it('watches a task to its outcome, and lists the mesh\'s capabilities', async () => {
    const id = (await runCli(['submit', '--api', a.api, '--capability', 'echo', '--input', '"watched"'])).stdout.trim()
    const watched = await runCli(['watch', id, '--api', b.api])
    expect(watched.code).toBe(0)
    // the mesh-wide filters given with one task's id were taken and ignored
    const filtered = await runCli(['watch', id, '--api', b.api, '--state', 'dead'])
    // a usage error, as every conflicting flag's: exit 2
    expect(filtered.code).toBe(2)
    expect(filtered.stderr).toMatch(/--capability and --state filter the mesh's changes, without ID/)
    const tree = await runCli(['tasks', '--api', b.api, '--parent', id, '--limit', '1'])
    expect(tree.code).toBe(2)
    expect(tree.stderr).toMatch(/--parent shows a task's whole tree: it takes no --state, --capability or --limit/)
    expect(watched.stdout).toMatch(/submitted +[0-9a-f]{12} echo\n.*claimed +attempt 1 by [0-9A-Za-z]{8}\n.*completed/)
    const dying = (await runCli(['submit', '--api', a.api, '--capability', 'fail', '--input', '{"times":9,"message":"no luck"}', '--max-attempts', '1'])).stdout.trim()
    const died = await runCli(['watch', dying, '--api', a.api, '--json'])
    expect(died.code).toBe(1)
    const events = died.stdout.trim().split('\n').map(l => JSON.parse(l))
    expect(events[0].event).toBe('submitted')
    expect(events.map(e => e.event)).toContain('claimed')
    expect(events.at(-1).event).toBe('dead')
    expect(events.at(-1).data.reason).toMatch(/no luck/)
    const caps = await runCli(['capabilities', '--api', a.api])
    expect(caps.code).toBe(0)
    expect(caps.stdout).toMatch(/^text\.reverse\t1\t\d+\t/m)
    expect(caps.stdout).toMatch(/^echo\t1\t\d+\treturns its input unchanged$/m)
  })

  it('suggests the closest capability for one nobody offers, refuses it with requirePeer, and takes short ids', async () => {
    const typo = await call(a.api, 'POST', '/v1/tasks', { capability: 'text.revers', input: 'x' })
    expect(typo.status).toBe(202)
    expect(typo.json.warning).toMatch(/did you mean text\.reverse\?/)
    const refused = await call(a.api, 'POST', '/v1/tasks', { capability: 'text.revers', input: 'x', requirePeer: true })
    expect(refused).toMatchObject({ status: 422, json: { error: { name: 'NO_CAPABLE_PEER', message: expect.stringMatching(/did you mean text\.reverse/) } } })
    const cli = await runCli(['submit', '--api', a.api, '--capability', 'txt.reverse', '--input', '"x"', '--require-peer'])
    expect(cli.code).toBe(1)
    expect(cli.stderr).toMatch(/no live peer offers txt\.reverse \(did you mean text\.reverse\?\)/)
    // a unique prefix stands for the id, as in git
    const id = (await runCli(['submit', '--api', a.api, '--capability', 'echo', '--input', '"short"'])).stdout.trim()
    await waitFor(async () => JSON.parse((await runCli(['task', id.slice(0, 10), '--api', a.api])).stdout).state === 'completed', { what: 'the task, by its short id, to complete' })
    const missing = await runCli(['task', 'ffff0000', '--api', a.api])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/no task starting with ffff0000/)
    expect((await runCli(['task', 'xyz', '--api', a.api])).stderr).toMatch(/not a task id/)
  })
})
