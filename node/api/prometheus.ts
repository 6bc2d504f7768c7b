import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { doorStats } from './door-list.js'
import { snapshotApiStats } from './stats.js'
import { TASK_OPTION_DEFAULTS } from '../tasks/options.js'
import { offeredNames } from '../tasks/submit-checks.js'
import type { ApiStats } from './stats.js'
import type { AgentNode } from '../create-node.js'
import type { ClaimedEvent, RanEvent } from '../tasks/events.js'
import type { RouteOptions } from 'fastify'

/** Leaves of the JSON stats that go up and down: gauges; every other number only counts up. */
const GAUGE_LEAVES = new Set(['executions.running', 'executions.reportsPending', 'replica.active', 'replica.copies'])

/** Seconds, from a claim's round trip (milliseconds) to a long agent run (minutes). */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** agentmesh_tasks' capability label for tasks of capabilities no live peer offers */
export const UNOFFERED_LABEL = '(not offered)'

/**
 * GET /metrics in Prometheus' text format, on prom-client: each group of the JSON counters in
 * /v1/metrics becomes one counter with an `event` label (`agentmesh_claims_total{event="claimsWon"}`),
 * next to gauges of what this node holds and serves and histograms of claims, runs and submit to
 * result. One registry per API server: a test process runs many nodes.
 */
export class MeshMetrics {
  readonly registry = new Registry()
  private readonly stop: Array<() => void> = []
  /** the JSON counters, read once per scrape (text()) for every metric made from them */
  private stats: Record<string, unknown> = {}
  private readonly read: () => Record<string, unknown>
  private readonly lagSampleMs: number

  constructor (node: AgentNode, api: ApiStats) {
    const r = this.registry
    this.lagSampleMs = (node.tasks?.options ?? TASK_OPTION_DEFAULTS).lagSampleMs
    this.read = () => ({ ...(node.tasks?.stats() ?? {}), api: snapshotApiStats(api), doors: doorStats() })
    const groups = (): Record<string, unknown> => this.stats
    for (const group of Object.keys(this.read())) this.counterGroup(group, () => groups()[group])
    new Gauge({
      name: 'agentmesh_held',
      help: 'what this node holds now: executions running, outcomes being reported, unfinished tasks it is a placement member of (replica.active), unfinished copies it keeps outside their placement (replica.copies)',
      labelNames: ['what'],
      registers: [r],
      collect (this: Gauge<'what'>) {
        for (const leaf of GAUGE_LEAVES) {
          const [group, field] = leaf.split('.') as [string, string]
          const value = (groups()[group] as Record<string, unknown> | undefined)?.[field]
          if (typeof value === 'number') this.set({ what: leaf }, value)
        }
      }
    })
    const tasks = node.tasks
    if (tasks === undefined) return
    new Gauge({
      name: 'agentmesh_live_peers',
      help: 'peers of the mesh this node sees live (itself not counted)',
      registers: [r],
      collect (this: Gauge) { this.set(tasks.presence.liveIds().filter(id => id !== node.peerId.toString()).length) }
    })
    new Gauge({
      name: 'agentmesh_free_slots',
      help: 'free execution slots on this node, by capability',
      labelNames: ['capability'],
      registers: [r],
      collect (this: Gauge<'capability'>) { for (const [capability, free] of Object.entries(tasks.runtime.freeSlots())) this.set({ capability }, free) }
    })
    new Gauge({
      name: 'agentmesh_tasks',
      help: 'tasks on this node\'s placements (kept records it is a member of), by state and capability',
      labelNames: ['state', 'capability'],
      registers: [r],
      async collect (this: Gauge<'state' | 'capability'>) {
        this.reset()
        // a series per capability anyone can name would let a client grow every node's scrape (and
        // its memory) with tasks of made-up names: those no live peer offers are summed as one
        const offered = offeredNames(tasks)
        const sums = new Map<string, { state: string, capability: string, count: number }>()
        for (const { state, capability, count } of await tasks.replica.tally()) {
          const label = offered.has(capability) ? capability : UNOFFERED_LABEL
          const key = `${state}\n${label}`
          const row = sums.get(key) ?? { state, capability: label, count: 0 }
          row.count += count
          sums.set(key, row)
        }
        for (const { state, capability, count } of sums.values()) this.set({ state, capability }, count)
      }
    })
    const claim = new Histogram({ name: 'agentmesh_claim_seconds', help: 'claims won here: from asking the placement to holding a majority lease', labelNames: ['capability'], buckets: BUCKETS, registers: [r] })
    const run = new Histogram({ name: 'agentmesh_run_seconds', help: 'executions here: agent run time, by how they ended', labelNames: ['capability', 'outcome'], buckets: BUCKETS, registers: [r] })
    const latency = new Histogram({ name: 'agentmesh_task_latency_seconds', help: 'tasks completed here: from submit (the submitter\'s clock) to certified result (this node\'s)', labelNames: ['capability'], buckets: BUCKETS, registers: [r] })
    const onClaimed = (evt: CustomEvent<ClaimedEvent>): void => { claim.observe({ capability: evt.detail.capability }, evt.detail.claimMs / 1000) }
    const onRan = (evt: CustomEvent<RanEvent>): void => {
      const d = evt.detail
      run.observe({ capability: d.capability, outcome: d.outcome }, d.runMs / 1000)
      if (d.latencyMs !== undefined) latency.observe({ capability: d.capability }, d.latencyMs / 1000)
    }
    tasks.events.addEventListener('claimed', onClaimed)
    tasks.events.addEventListener('ran', onRan)
    this.stop.push(() => {
      tasks.events.removeEventListener('claimed', onClaimed)
      tasks.events.removeEventListener('ran', onRan)
    })
  }

  /** One counter per stats group; its leaves (nested ones joined by dots) are the `event` label. */
  private counterGroup (group: string, read: () => unknown): void {
    const name = `agentmesh_${snake(group)}_total`
    new Counter({
      name: `agentmesh_${snake(group)}_total`,
      help: `the ${group} counters of GET /v1/metrics, by event`,
      labelNames: ['event'],
      registers: [this.registry],
      // prom-client counters only go up by inc(): the node's own counts are the source, copied in per scrape
      collect (this: Counter<'event'>) {
        this.reset()
        for (const [event, value] of leaves(read())) if (!GAUGE_LEAVES.has(`${group}.${event}`)) this.inc({ event }, value)
      }
    })
  }

  async text (): Promise<string> {
    this.stats = this.read()
    const text = await Registry.merge([processMetrics(this.lagSampleMs), this.registry]).metrics()
    // prom-client writes NaN (a lag mean before its first sample) as "Nan": the text format says NaN
    return text.replace(/ Nan$/gm, ' NaN')
  }

  close (): void {
    for (const fn of this.stop.splice(0)) fn()
    this.registry.clear()
  }

  get contentType (): string {
    return this.registry.contentType
  }

}

/** GET /metrics: Prometheus' text format (not JSON, so not one of the control API's routes). */
export function prometheusRoute (metrics: MeshMetrics): RouteOptions {
  return {
    method: 'GET',
    url: '/metrics',
    handler: async (_request, reply) => reply.type(metrics.contentType).send(await metrics.text())
  }
}

let processRegistry: Registry | undefined

/**
 * The process's own CPU, memory, GC and event-loop figures: collected once per process, since
 * each collection starts observers that nothing stops, and a test process runs many API servers.
 */
function processMetrics (lagSampleMs: number): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    // its event-loop histogram samples every 10 ms unless told: nearly a percent of a core, forever after the first scrape
    // its CPU counters count from now; the process's CPU before the first scrape counts too
    const { user, system } = process.cpuUsage()
    collectDefaultMetrics({ register: processRegistry, prefix: 'agentmesh_', eventLoopMonitoringPrecision: lagSampleMs })
    const before: Array<[string, number]> = [['user', user], ['system', system], ['', user + system]]
    for (const [part, micros] of before) {
      const counter = processRegistry.getSingleMetric(`agentmesh_process_cpu_${part === '' ? '' : `${part}_`}seconds_total`)
      if (counter instanceof Counter) counter.inc(micros / 1e6)
    }
  }
  return processRegistry
}

function leaves (value: unknown, prefix = ''): Array<[string, number]> {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? [[prefix, value]] : []
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix === '' ? k : `${prefix}.${k}`))
}

function snake (name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()
}
