import type { ResultAudit, StoredExecution } from './audit.js'
import type { Cluster, NodeFigures } from './cluster.js'
import type { SimOptions } from './runner.js'

export interface TaskTrace {
  index: number
  capability: string
  id?: string
  submittedAt: number
  finishedAt?: number
  state?: string
  executor?: string
  /** the node whose answer finished the trace */
  readFrom?: number
  /** the claim and the result hash (audit.ts) that node answered with */
  claimId?: string
  resultHash?: string
  /** completed with a correct result */
  ok: boolean
}

export interface FaultTrace {
  at: number
  kind: string
  detail: string
  /** how long the fault lasted (a crash: until the restart); undefined when it lasted to the end */
  durationMs?: number
  node?: number
  /** until every task unfinished at the fault had finished (tasks blocked by split votes left out: counted apart) */
  recoveryMs?: number
  /** not applied: no live node to apply it to (every node down at the time) */
  skipped?: boolean
  /** no acknowledged task was in flight when it came, or submitted in the second after (the workload had finished, or not begun): it tested nothing */
  idle?: boolean
}

export interface Invariant {
  name: string
  ok: boolean
  detail: string
}

export interface SimReport {
  scenario: string
  description?: string
  seed: number
  nodes: number
  transport: string
  processes: boolean
  workload: string
  rate: number
  submitted: number
  acknowledged: number
  submitErrors: number
  completed: number
  dead: number
  canceled: number
  /** acknowledged tasks no live node knows at the end: must be 0 */
  lost: number
  /** acknowledged tasks neither finished nor listed as blocked at the end */
  unfinished: number
  /** unfinished, and listed as blocked by a live node for split votes a lost member could have certified either way, or a majority of its placement removed for good */
  blocked: number
  wrongResults: number
  duplicateExecutions: number
  abortedExecutions: number
  staleResultsRefused: number
  claimsDenied: number
  gossipRejected: number
  latencyMs: { p50: number, p95: number, p99: number, max: number }
  throughputPerSec: number
  durationMs: number
  /** per node: the workload's tasks it completed, and the subtasks (a planner's children) it completed */
  workPerNode: Array<{ index: number, peerId: string, alive: boolean, completed: number, subtasks: number }>
  /** executions per node over the run (ms from its start), for the timeline; capped at MAX_TIMELINE_EXECUTIONS */
  executions: Array<{ node: number, start: number, end: number, outcome: string, subtask: boolean }>
  /** executions recorded but not drawn (over the cap) */
  executionsLeftOut: number
  faults: FaultTrace[]
  timeline: Array<{ t: number, completed: number }>
  latencies: number[]
  mesh: { nodes: Array<{ index: number, alive: boolean }>, edges: Array<[number, number]> }
  /** every node's store, read after the run: what "at most one accepted result" is checked on */
  resultAudit: ResultAudit
  invariants: Invariant[]
  note: string
}

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] as number
}

const sum = (figures: NodeFigures[], get: (s: any) => number | undefined): number =>
  figures.reduce((n, f) => n + (get(f.stats) ?? 0), 0)

export interface ReportInput {
  options: SimOptions
  cluster: Cluster
  traces: TaskTrace[]
  faults: FaultTrace[]
  submitErrors: number
  durationMs: number
  nodeFigures: NodeFigures[]
  edges: Array<[number, number]>
  audit: ResultAudit
  /** for tasks that did not finish: each node's copy in one line (audit.ts) */
  stuck?: string[]
  /** every execution the stores recorded, subtasks' too */
  executions?: StoredExecution[]
  /** the run's t = 0, ms since the epoch */
  startedAt?: number
}

/** A fault with no task in flight at its moment is measured on the tasks submitted this soon after it. */
const FAULT_REACH_MS = 1_000

/** Executions drawn on the report's timeline at most: past this the chart says how many it left out. */
export const MAX_TIMELINE_EXECUTIONS = 3_000

export function buildReport (r: ReportInput): SimReport {
  const acked = r.traces.filter(t => t.id !== undefined)
  const finished = acked.filter(t => t.finishedAt !== undefined)
  const completed = finished.filter(t => t.state === 'completed')
  const latencies = completed.map(t => (t.finishedAt as number) - t.submittedAt).sort((a, b) => a - b)
  for (const f of r.faults) {
    if (f.skipped === true) continue
    // a task blocked by split votes waits for a lost member or an operator: counted apart, not as a slow recovery
    const atFault = acked.filter(t => t.submittedAt <= f.at && (t.finishedAt === undefined || t.finishedAt > f.at))
    // none in flight at its very moment (quick tasks between two submits): those submitted in the
    // second after it met it too (a flood stalled them all, and was said to have tested nothing)
    const inFlight = atFault.length > 0 ? atFault : acked.filter(t => t.submittedAt > f.at && t.submittedAt <= f.at + FAULT_REACH_MS)
    // a fault after the last task finished was reported as recovered in 0 ms, as if it had been weathered
    if (inFlight.length === 0) {
      f.idle = true
      continue
    }
    const open = inFlight.filter(t => t.state !== 'blocked')
    f.recoveryMs = open.length === 0 ? 0 : open.some(t => t.finishedAt === undefined) ? undefined : Math.max(...open.map(t => (t.finishedAt as number) - f.at))
  }
  const bucket = 250
  const timeline: Array<{ t: number, completed: number }> = []
  for (let t = 0; t <= r.durationMs + bucket; t += bucket) timeline.push({ t, completed: completed.filter(x => (x.finishedAt as number) <= t).length })
  const byPeer = new Map<string, number>()
  for (const t of completed) if (t.executor !== undefined) byPeer.set(t.executor, (byPeer.get(t.executor) ?? 0) + 1)
  const lost = acked.filter(t => t.state === 'lost').length
  const blocked = acked.filter(t => t.finishedAt === undefined && t.state === 'blocked').length
  const unfinished = acked.filter(t => t.finishedAt === undefined && t.state !== 'lost' && t.state !== 'blocked').length
  const wrong = completed.filter(t => !t.ok).length
  const a = r.audit
  const nodeOf = new Map(r.nodeFigures.map(f => [f.peerId, f.index]))
  const subtasksByPeer = new Map<string, number>()
  for (const e of r.executions ?? []) if (e.subtask && e.outcome === 'completed') subtasksByPeer.set(e.peer, (subtasksByPeer.get(e.peer) ?? 0) + 1)
  const t0 = r.startedAt ?? 0
  const placed = (r.executions ?? []).filter(e => nodeOf.has(e.peer)).map(e => ({ node: nodeOf.get(e.peer) as number, start: Math.max(0, e.startedAt - t0), end: Math.max(0, (e.endedAt ?? t0 + r.durationMs) - t0), outcome: e.outcome, subtask: e.subtask }))
  const drawn = placed.slice(0, MAX_TIMELINE_EXECUTIONS)
  const invariants: Invariant[] = [
    // every invariant below is about acknowledged tasks: with none they would all hold and prove nothing
    { name: 'some task acknowledged', ok: acked.length > 0, detail: `no task acknowledged (${r.traces.length} submitted): the other invariants hold vacuously` },
    { name: 'no task lost', ok: lost === 0, detail: `${lost} acknowledged tasks unknown to every live node` },
    // blocked: listed by a member for split votes a lost member could have certified either way (README, Moving a placement)
    { name: 'every task finished', ok: unfinished === 0, detail: [`${unfinished} still pending or running at the end, and not blocked by split votes or a placement whose majority left for good (${blocked} were)`, ...(r.stuck ?? [])].join('; ') },
    {
      name: 'at most one accepted result per task',
      ok: a.conflicts === 0 && a.unreadable.length === 0,
      detail: [
        `${a.conflicts} tasks whose completed copies on ${a.nodesRead} nodes' stores, or the reads of them, disagree on the claim or the result`,
        ...(a.unreadable.length === 0 ? [] : [`stores not read, so not checked: ${a.unreadable.join('; ')}`]),
        ...a.examples
      ].join('; ')
    },
    { name: 'every acknowledged result readable and correct', ok: wrong === 0 && a.unbacked === 0, detail: `${wrong} completed tasks whose result was missing or wrong; ${a.unbacked} read as completed but held by no node's store` }
  ]
  return {
    scenario: r.options.scenario.name,
    description: r.options.scenario.description,
    seed: r.options.seed,
    nodes: r.options.nodes,
    transport: r.options.processes ? 'tcp' : r.options.transport,
    processes: r.options.processes,
    workload: r.options.workload,
    rate: r.options.rate,
    submitted: r.traces.length,
    acknowledged: acked.length,
    submitErrors: r.submitErrors,
    completed: completed.length,
    dead: finished.filter(t => t.state === 'dead').length,
    canceled: finished.filter(t => t.state === 'canceled').length,
    lost,
    unfinished,
    blocked,
    wrongResults: wrong,
    duplicateExecutions: sum(r.nodeFigures, s => s?.executions?.duplicateExecutions),
    abortedExecutions: sum(r.nodeFigures, s => s?.executions?.leaseLost),
    staleResultsRefused: sum(r.nodeFigures, s => s?.replica?.staleResults),
    claimsDenied: sum(r.nodeFigures, s => s?.claims?.claimsDenied),
    gossipRejected: sum(r.nodeFigures, s => Object.values(s?.gossipRejected ?? {}).reduce((a: number, b) => a + Number(b), 0)),
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), max: latencies.at(-1) ?? 0 },
    throughputPerSec: r.durationMs === 0 ? 0 : Math.round(completed.length / (r.durationMs / 1000) * 10) / 10,
    durationMs: r.durationMs,
    workPerNode: r.nodeFigures.map(f => ({ index: f.index, peerId: f.peerId, alive: f.alive, completed: byPeer.get(f.peerId) ?? 0, subtasks: subtasksByPeer.get(f.peerId) ?? 0 })),
    executions: drawn,
    executionsLeftOut: placed.length - drawn.length,
    faults: r.faults,
    timeline,
    latencies,
    mesh: { nodes: r.nodeFigures.map(f => ({ index: f.index, alive: f.alive })), edges: r.edges },
    resultAudit: a,
    // a detail says what broke: a passing one's read "hold vacuously" and the like in the JSON
    invariants: invariants.map(inv => inv.ok ? { ...inv, detail: 'holds' } : inv),
    note: 'Timings are real (wall clock on this machine), so latency and recovery figures vary a little between runs with the same seed, and so may the node a fault aimed at a holder or a random node hits; the workload and the fault plan (which faults, when) do not.'
  }
}

/** The summary as aligned text lines. */
export function summaryLines (r: SimReport): string[] {
  const rows: Array<[string, string]> = [
    ['scenario', `${r.scenario} (seed ${r.seed}, ${r.nodes} ${r.nodes === 1 ? 'node' : 'nodes'}, ${r.processes ? 'child processes' : `one process, ${r.transport}`})`],
    ['workload', `${r.workload}, ${r.submitted} tasks at ${r.rate}/s`],
    ['submitted / acknowledged', `${r.submitted} / ${r.acknowledged}${r.submitErrors > 0 ? ` (${r.submitErrors} submits retried)` : ''}`],
    ['completed / dead / canceled', `${r.completed} / ${r.dead} / ${r.canceled}`],
    ['lost / unfinished / blocked', `${r.lost} / ${r.unfinished} / ${r.blocked}`],
    ['duplicate executions', `${r.duplicateExecutions} (results refused); ${r.abortedExecutions} on a lost lease (aborted, or a vote round short for want of answers)`],
    ['stale results refused', String(r.staleResultsRefused)],
    ['claims denied (contention)', String(r.claimsDenied)],
    ['gossip rejected', String(r.gossipRejected)],
    ['latency p50 / p95 / p99', `${r.latencyMs.p50} / ${r.latencyMs.p95} / ${r.latencyMs.p99} ms`],
    ['throughput', `${r.throughputPerSec} tasks/s over ${(r.durationMs / 1000).toFixed(1)} s`],
    ['stores audited', `${r.resultAudit.nodesRead} ${r.resultAudit.nodesRead === 1 ? 'node' : 'nodes'}, ${r.resultAudit.copies} task copies (${r.resultAudit.completedCopies} completed); ${r.resultAudit.losingCompletions} tasks whose copies show two runs that completed, one of them certified (the other's result never was)`],
    ['work per node', `${r.workPerNode.map(w => `${w.index}${w.alive ? '' : '†'}:${w.completed}${w.subtasks > 0 ? `+${w.subtasks}` : ''}`).join(' ')}${r.workPerNode.some(w => w.subtasks > 0) ? ' (tasks+subtasks)' : ''}`]
  ]
  for (const f of r.faults) rows.push([`fault at ${(f.at / 1000).toFixed(1)} s`, f.skipped === true ? `${f.kind}: ${f.detail}` : f.idle === true ? `${f.kind}: ${f.detail}; no task was in flight then or submitted in the second after (the workload had finished or not begun): it tested nothing` : `${f.kind}: ${f.detail}; recovered in ${f.recoveryMs === undefined ? 'never' : `${f.recoveryMs} ms`}`])
  const width = Math.max(...rows.map(([k]) => k.length))
  const out = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`)
  out.push('')
  for (const inv of r.invariants) out.push(`${inv.ok ? 'PASS' : 'FAIL'}  ${inv.name}${inv.ok ? '' : `: ${inv.detail}`}`)
  return out
}
