import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoAgent, failAgent } from '../../node/agents/basic.js'
import { ApiServer } from '../../node/api/server.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import type { Testnet } from '../../sim/testnet.js'

interface Sample { name: string, labels: Record<string, string>, value: number }

/** Prometheus' text format, read strictly: a line that is neither a comment nor a sample fails the test. */
function parse (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line)
    if (m === null) throw new Error(`not a sample: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = v as string
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return samples
}

function sum (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0)
}

describe('GET /metrics in Prometheus text format', () => {
  let net: Testnet
  const apis: ApiServer[] = []

  beforeAll(async () => {
    // node 0 runs the tasks, node 1 only takes requests. A lease of 10 s: a claim gives up a third of
    // a lease after asking, and a handed pure task's claim that gave up at 667 ms on a loaded machine
    // was still certified by the late member's grant and vote, so it ended with no claim won here
    net = await createTestnet(2, { perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 10_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, agents: i === 0 ? [echoAgent, failAgent] : [] } }) })
    await net.ready()
    for (const node of net.nodes) apis.push(await ApiServer.listen(node, { port: 0 }))
  })
  afterAll(async () => {
    await Promise.allSettled(apis.map(async a => a.close()))
    await net?.stop()
  })

  const scrape = async (i: number): Promise<{ type: string | null, samples: Sample[] }> => {
    const res = await fetch(`${apis[i]!.url}/metrics`)
    expect(res.status).toBe(200)
    return { type: res.headers.get('content-type'), samples: parse(await res.text()) }
  }

  it('counts claims, runs and results, and gauges peers, slots and tasks by state', async () => {
    const service = net.nodes[1]!.tasks!.service
    const echoes = await Promise.all([1, 2, 3].map(async n => (await service.submit({ capability: 'echo', input: n })).id))
    const failing = (await service.submit({ capability: 'fail', input: { times: 5, message: 'broken on purpose' }, maxAttempts: 1 })).id
    for (const id of [...echoes, failing]) await service.waitFor(id, 30_000)
    expect((await service.get(failing)).record.final?.state).toBe('dead')

    const cpu = process.cpuUsage()
    // the waits wake on node 1's copies: node 0, which ran the tasks, records each run once its report returns
    const runsRecorded = (got: Sample[]): boolean => sum(got, 'agentmesh_run_seconds_count', { capability: 'echo', outcome: 'completed' }) >= 3 &&
      sum(got, 'agentmesh_task_latency_seconds_count', { capability: 'echo' }) >= 3 && sum(got, 'agentmesh_run_seconds_count', { capability: 'fail', outcome: 'failed' }) >= 1
    const { type, samples } = await waitFor(async () => { const got = await scrape(0); return runsRecorded(got.samples) ? got : undefined }, { what: 'node 0 to record every run' })
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(sum(samples, 'agentmesh_claims_total', { event: 'claimsWon' })).toBeGreaterThanOrEqual(4)
    expect(sum(samples, 'agentmesh_run_seconds_count', { capability: 'echo', outcome: 'completed' })).toBeGreaterThanOrEqual(3)
    expect(sum(samples, 'agentmesh_run_seconds_count', { capability: 'fail', outcome: 'failed' })).toBe(1)
    expect(sum(samples, 'agentmesh_task_latency_seconds_count', { capability: 'echo' })).toBeGreaterThanOrEqual(3)
    expect(sum(samples, 'agentmesh_claim_seconds_count')).toBeGreaterThanOrEqual(4)
    expect(sum(samples, 'agentmesh_live_peers')).toBe(1)
    expect(sum(samples, 'agentmesh_free_slots', { capability: 'echo' })).toBeGreaterThan(0)
    // the process's CPU since it started, not since the first scrape registered the counter
    expect(sum(samples, 'agentmesh_process_cpu_seconds_total')).toBeGreaterThanOrEqual((cpu.user + cpu.system) / 1e6)
    // a bucket count never falls as the bound grows, and +Inf holds them all
    const buckets = samples.filter(s => s.name === 'agentmesh_run_seconds_bucket' && s.labels.capability === 'echo' && s.labels.outcome === 'completed')
    expect(buckets.map(b => b.value)).toEqual([...buckets.map(b => b.value)].sort((x, y) => x - y))
    expect(buckets.at(-1)).toMatchObject({ labels: { le: '+Inf' } })
    // both nodes are the placement of every task (two nodes): each holds them as certified
    // a wait wakes once a majority stored the outcome: this node's own copy may still be on its way
    for (const i of [0, 1]) {
      await waitFor(async () => {
        const { samples } = await scrape(i)
        return sum(samples, 'agentmesh_tasks', { state: 'completed', capability: 'echo' }) === 3 && sum(samples, 'agentmesh_tasks', { state: 'dead', capability: 'fail' }) === 1
      }, { what: `node ${i} to count 3 completed echo tasks and 1 dead fail task` })
    }
    const served = await scrape(1)
    expect(sum(served.samples, 'agentmesh_tasks_total', { event: 'submitted' })).toBeGreaterThanOrEqual(4)
    expect(sum(served.samples, 'agentmesh_api_total', { event: 'requests' })).toBeGreaterThan(0)
    expect(sum(served.samples, 'agentmesh_live_peers')).toBe(1)
  })

  it('sums tasks of capabilities no live peer offers under one label, however many names a client makes up', async () => {
    const service = net.nodes[1]!.tasks!.service
    const made = await Promise.all(Array.from({ length: 30 }, async (_, i) => (await service.submit({ capability: `made-up-${i}`, input: i, deadlineMs: 1 })).id))
    for (const id of made) await service.waitFor(id, 30_000)
    // a wait wakes once a majority stored the outcome: this node's own copy may still be on its way
    let samples: Sample[] = []
    await waitFor(async () => {
      samples = (await scrape(1)).samples
      return sum(samples, 'agentmesh_tasks', { state: 'dead', capability: '(not offered)' }) === 30
    }, { what: 'node 1 to count the 30 dead tasks of made-up capabilities under one label' })
    const labels = new Set(samples.filter(s => s.name === 'agentmesh_tasks').map(s => s.labels.capability))
    expect([...labels].filter(l => l?.startsWith('made-up'))).toEqual([])
    // what some live peer offers keeps its own series
    expect(sum(samples, 'agentmesh_tasks', { state: 'completed', capability: 'echo' })).toBe(3)
  })

  it('counts every error answer in api.errors, the doors\' own and an SDK\'s on the raw response too', async () => {
    const base = apis[1]!.url
    const errors = async (): Promise<number> => (await (await fetch(`${base}/v1/metrics`)).json()).api.errors
    const before = await errors()
    const json = { 'content-type': 'application/json' }
    const answers = [
      // the control API's refusal (answerError), counted before as now
      await fetch(`${base}/v1/tasks`, { method: 'POST', headers: json, body: '{}' }),
      // the OpenAI door's own 400 and 404, in OpenAI's shape
      await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: json, body: '{"messages":"not a list"}' }),
      await fetch(`${base}/v1/models/no-such-model`),
      // the MCP door's own JSON-RPC refusal, and the SDK's 406 for a request that does not accept its answer kinds
      await fetch(`${base}/mcp`, { method: 'POST', headers: { ...json, accept: 'application/json, text/event-stream' }, body: 'null' }),
      await fetch(`${base}/mcp`, { method: 'POST', headers: json, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' })
    ]
    expect(answers.map(a => a.status)).toEqual([400, 400, 404, 400, 406])
    // the metrics read is itself no error; before, only the first was counted
    expect(await errors()).toBe(before + 5)
  })

  it('keeps /v1/metrics as JSON', async () => {
    const res = await fetch(`${apis[0]!.url}/v1/metrics`)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect((await res.json()).claims.claimsWon).toBeGreaterThanOrEqual(4)
  })
})
