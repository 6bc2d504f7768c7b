import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BUILTIN_AGENTS } from '../../node/agents/index.js'
import { ApiServer } from '../../node/api/server.js'
import { BIN, runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Server } from 'node:http'
import type { DaemonProcess } from '../../sim/daemon-process.js'
import type { Testnet } from '../../sim/testnet.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT_SPAN = '00f067aa0ba902b7'
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN}-01`

describe('a task\'s trace, from the records', () => {
  let net: Testnet
  const apis: ApiServer[] = []
  beforeAll(async () => {
    net = await createTestnet(3, { tasks: { ...FAST_TASKS, leaseMs: 3_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, agents: BUILTIN_AGENTS } })
    await net.ready()
    for (const node of net.nodes) apis.push(await ApiServer.listen(node, { port: 0 }))
  })
  afterAll(async () => {
    await Promise.allSettled(apis.map(async a => a.close()))
    await net?.stop()
  })

  it('carries a traceparent header into the task and its subtasks, and lists the tree on another node', async () => {
    const text = Array.from({ length: 200 }, (_, i) => `w${i % 13}`).join(' ')
    const res = await fetch(`${apis[0]!.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: TRACEPARENT }, body: JSON.stringify({ capability: 'mapreduce', input: { text, chunks: 3 } }) })
    const { id } = await res.json()
    await net.nodes[0]!.tasks!.service.waitFor(id, 60_000)
    const trace = await (await fetch(`${apis[2]!.url}/v1/tasks/${id as string}/trace`)).json()
    expect(trace.traceId).toBe(TRACE_ID)
    expect(trace.tasks[0]).toMatchObject({ id, depth: 0, state: 'completed' })
    const children = trace.tasks.filter((t: any) => t.depth === 1)
    expect(children.length).toBeGreaterThanOrEqual(3)
    for (const child of children) {
      expect(child).toMatchObject({ parent: id, capability: 'text.wordcount', state: 'completed' })
      // one trace: the subtasks' contexts carry the caller's trace id
      expect(child.traceparent.split('-')[1]).toBe(TRACE_ID)
    }
    // the CLI's tree of subtasks, from the same trace: node 1 lists its own copies, and as the
    // placements' last member it may hold a subtask's final state after the others
    const listed = async (): Promise<string[] | undefined> => {
      const tree = await runCli(['tasks', '--parent', (id as string).slice(0, 8), '--api', apis[1]!.url])
      expect(tree.code).toBe(0)
      const rows = tree.stdout.trim().split('\n')
      return rows.length - 2 === children.length && rows.slice(1).every(r => /\tcompleted/.test(r)) ? rows : undefined
    }
    const rows = await waitFor(listed, { what: 'node 1 to list every subtask completed' })
    expect(rows[1]).toMatch(new RegExp(`^${id as string}\tmapreduce\tcompleted`))
    expect(rows.slice(2).every(r => /^  └ [0-9a-f]{64}\ttext\.wordcount\tcompleted/.test(r))).toBe(true)
    // a field wins over the header; a malformed one is refused, a malformed header ignored
    const bad = await fetch(`${apis[0]!.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'echo', input: 1, traceparent: 'nope' }) })
    expect(bad.status).toBe(400)
    const ignored = await fetch(`${apis[0]!.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: 'garbage' }, body: JSON.stringify({ capability: 'echo', input: 2 }) })
    const own = await (await fetch(`${apis[0]!.url}/v1/tasks/${(await ignored.json()).id as string}`)).json()
    expect(own.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    expect(own.traceparent.split('-')[1]).not.toBe(TRACE_ID)
    // an array of tasks joins the header's trace too, each task that names none
    const other = `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`
    const bulk = await (await fetch(`${apis[0]!.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: TRACEPARENT }, body: JSON.stringify([{ capability: 'echo', input: 3 }, { capability: 'echo', input: 4, traceparent: other }]) })).json()
    const [first, second] = await Promise.all(bulk.tasks.map(async (t: { id: string }) => (await fetch(`${apis[0]!.url}/v1/tasks/${t.id}`)).json()))
    expect(first.traceparent.split('-')[1]).toBe(TRACE_ID)
    expect(second.traceparent).toBe(other)
  })
})

describe('submit --wait on a terminal', () => {
  const tmp = useTmpDirs()
  let net: Testnet
  let api: ApiServer
  beforeAll(async () => {
    net = await createTestnet(2, { tasks: { ...FAST_TASKS, leaseMs: 3_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, agents: BUILTIN_AGENTS } })
    await net.ready()
    api = await ApiServer.listen(net.nodes[0]!, { port: 0 })
  })
  afterAll(async () => {
    await api?.close()
    await net?.stop()
  })

  // script(1) gives the CLI a terminal, as a person's shell would (util-linux, on every Debian)
  it.skipIf(!existsSync('/usr/bin/script'))('shows the task\'s events and progress on stderr as they come, the result alone on stdout', async () => {
    const dir = await tmp()
    const out = join(dir, 'result.json')
    const text = Array.from({ length: 300 }, (_, i) => `w${i % 7}`).join(' ')
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} submit --api ${api.url} --capability mapreduce --input '${JSON.stringify({ text, chunks: 3 })}' --wait > ${JSON.stringify(out)}`
    const child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let shown = ''
    child.stdout.on('data', d => { shown += String(d) })
    const [code] = await once(child, 'close') as [number]
    expect(code, shown).toBe(0)
    expect(shown).toMatch(/submitted +[0-9a-f]{12} mapreduce/)
    expect(shown).toMatch(/claimed +attempt 1 by \w{8}/)
    expect(shown).toMatch(/progress +\{"phase":"map","done":3,"of":3\}/)
    expect(JSON.parse(await readFile(out, 'utf8')).counts).toMatchObject({ w0: 43, w6: 42 })
  })
})

describe('OpenTelemetry export from a daemon', () => {
  const tmp = useTmpDirs()
  let collector: Server
  let daemon: DaemonProcess | undefined
  const spans: any[] = []

  beforeAll(async () => {
    // a stand-in OTLP/HTTP collector: it keeps what it is sent
    collector = createServer((req, res) => {
      let body = ''
      req.on('data', d => { body += String(d) })
      req.on('end', () => {
        try {
          for (const rs of JSON.parse(body).resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push({ ...s, resource: rs.resource })
        } catch {}
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      })
    })
    await new Promise<void>(resolve => collector.listen(0, '127.0.0.1', resolve))
  })
  afterAll(async () => {
    daemon?.proc.kill('SIGKILL')
    collector?.close()
  })

  it('exports submit, claim, run and commit spans of one trace when OTEL_EXPORTER_OTLP_ENDPOINT is set; agentmesh trace prints the timeline', async () => {
    const dir = await tmp()
    const config = join(dir, 'config.json')
    await writeFile(config, JSON.stringify({ tasks: FAST_TASKS }))
    const endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`
    daemon = await startDaemonProcess(['--data', join(dir, 'd'), '--api', '127.0.0.1:0', '--config', config, '--agents', 'echo'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' } })
    const res = await fetch(`${daemon.api}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: TRACEPARENT }, body: JSON.stringify({ capability: 'echo', input: 'traced' }) })
    const { id } = await res.json()
    const hex = (v: string): string => /^[0-9a-f]+$/.test(v) ? v : Buffer.from(v, 'base64').toString('hex')
    const names = ['agentmesh.submit', 'agentmesh.claim', 'agentmesh.run', 'agentmesh.commit']
    await waitFor(() => names.every(n => spans.some(s => s.name === n && hex(s.traceId) === TRACE_ID)), { timeoutMs: 20_000, what: () => `spans ${names.join(', ')}; got ${spans.map(s => s.name).join(', ')}` })
    const submit = spans.find(s => s.name === 'agentmesh.submit')
    expect(hex(submit.parentSpanId)).toBe(PARENT_SPAN)
    const run = spans.find(s => s.name === 'agentmesh.run')
    expect(hex(spans.find(s => s.name === 'agentmesh.commit').parentSpanId)).toBe(hex(run.spanId))
    expect(JSON.stringify(submit.resource)).toContain('agentmesh')

    const printed = await runCli(['trace', id, '--api', daemon.api])
    expect(printed.code).toBe(0)
    expect(printed.stdout).toContain(`trace ${TRACE_ID}: 1 task`)
    expect(printed.stdout).toMatch(/submitted on \w{8}\n.*attempt 1 on \w{8}: completed after/)
    // one daemon: its own vote is the placement's majority
    expect(printed.stdout).toMatch(new RegExp(`completed, certified by 1 of 1 \\(${daemon.peerId.slice(-8)}\\)`))
  })
})
