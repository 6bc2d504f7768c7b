import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditResults, readStores, resultHash } from './audit.js'
import { InProcessCluster } from './in-process.js'
import { ProcessCluster } from './processes.js'
import { buildReport } from './report.js'
import { Rng } from './rng.js'
import { checkSimRun } from './scenario.js'
import { applyFault } from './apply-fault.js'
import type { After, FaultedNodes } from './apply-fault.js'
import { makeWorkload } from './workload.js'
import type { ResultAudit, StoredCopy, StoredExecution } from './audit.js'
import type { Cluster, NodeFigures } from './cluster.js'
import type { SimReport, TaskTrace, FaultTrace } from './report.js'
import type { Scenario } from './scenario.js'
import type { WorkloadName } from './workload.js'
import type { TaskLayerInit } from '../node/tasks/options.js'
import type { AgentNodeInit } from '../node/create-node.js'

/** How long past a pause's or a split's end (the cluster's own timer, started before it returned) the run waits for it. */
const RESTORE_MARGIN_MS = 100

export interface SimOptions {
  scenario: Scenario
  nodes: number
  tasks: number
  workload: WorkloadName
  /** tasks submitted per second */
  rate: number
  seed: number
  transport: 'memory' | 'tcp'
  processes: boolean
  /** called about every 250 ms while the run goes */
  onProgress?: (p: { done: number, total: number, live: number, elapsedMs: number }) => void
  /**
   * How long to wait for stragglers: the run ends this long after the last submit or the last
   * task that finished, whichever is later, so a slow but working mesh is not cut off.
   * @default 60_000
   */
  drainMs?: number
  /** called when a fault is applied */
  onFault?: (fault: FaultTrace) => void
  /** called once the mesh is up, before the workload starts */
  onReady?: (nodes: number) => void
  /** ends the run early (a Ctrl-C): its nodes are stopped and its data dirs removed, and it rejects with SimInterruptedError */
  signal?: AbortSignal
}

export class SimInterruptedError extends Error {
  static override name = 'SimInterruptedError'
  constructor (message: string) { super(message); this.name = 'SimInterruptedError' }
}

/** Timers for a simulated mesh: quick enough to show recovery in seconds, calm enough for 50+ nodes in one process. */
export function simTaskOptions (nodes: number, leaseMs: number): TaskLayerInit {
  // presence is n messages per interval, each checked by n peers: n² work shared by one process,
  // so the interval grows with n² (2 s to 30 nodes, 5 s at 50, 20 s at 100) and the cost stays flat
  const big = nodes > 8
  return {
    // past ~10 nodes in one process the event loop lags by seconds, and more with every node: short
    // leases then lapse while held (10 s, and 200 ms a node past 50: 20 s at 100)
    leaseMs: nodes > 10 ? Math.max(leaseMs, 10_000, nodes * 200) : leaseMs,
    presenceIntervalMs: big ? Math.max(2_000, nodes * nodes * 2) : 500,
    pullIntervalMs: big ? 2_000 : 500,
    // pulls back off at idle, but no further than recovery scenarios can wait
    pullIntervalCapMs: big ? 8_000 : 2_000,
    pullMinAgeMs: big ? 3_000 : 1_000,
    sweepIntervalMs: 250,
    reannounceBaseMs: 1_000,
    reannounceCapMs: 5_000,
    backoffBaseMs: 200,
    backoffCapMs: 2_000,
    claimStaggerMs: 100,
    claimRetryBaseMs: 100,
    antiEntropyIntervalMs: big ? 30_000 : 5_000,
    rpcTimeoutMs: 10_000,
    // a killed node's placements move within the run's drain (the default, 2 minutes, is past it);
    // longer than any scenario's partition or pause, so only nodes that are gone for good are moved
    placementMoveAfterMs: 15_000,
    syncWrites: false
  }
}

/**
 * libp2p settings for many nodes in one process. Gossipsub's defaults send each message to every
 * subscriber first (flood publishing) and then along a mesh of degree 6, and tell a quarter of the
 * other peers of it at every heartbeat: at 50 nodes that is thousands of frames a second, each
 * encrypted and decrypted on the same two cores.
 */
export function simNodeTuning (nodes: number): Partial<AgentNodeInit> {
  if (nodes <= 8) return {}
  // our messages are about 1 KiB: in this sparse mesh (no flood publishing, degree 3) an IDONTWANT per mesh peer for each would double the frames
  // from 40 nodes a heartbeat every 3 s, not 1: each is mesh upkeep and gossip for every topic of
  // every node (50 nodes idle: 33-37% of a core with the 1 s heartbeat, 24-31% with this). Presence
  // then comes every 3.2 s or more, so a mesh repaired a heartbeat later still carries the next one
  // well before a peer leaves the view (3 intervals)
  const heartbeat = nodes >= 40 ? { heartbeatMs: 3_000 } : {}
  return { gossip: { floodPublish: false, degree: 3, lazyDegree: 3, lazyFactor: 0, idontwantMinBytes: 64 * 1024, ...heartbeat } }
}

/**
 * Runs a workload against a real mesh while the scenario's faults play out, then checks the
 * invariants: on what clients were told, and on every node's store once the nodes have stopped.
 * The same seed gives the same tasks and the same fault schedule; timings are real. Options a run
 * cannot mean (no nodes, a fault naming a node the run lacks) are refused with InvalidConfigError.
 */
export async function runSimulation (o: SimOptions): Promise<SimReport> {
  checkSimRun({ nodes: o.nodes, tasks: o.tasks, workload: o.workload, rate: o.rate, seed: o.seed, transport: o.transport, processes: o.processes }, o.scenario)
  // separate streams, so the fault schedule does not shift with how submissions interleave
  const rng = new Rng(o.seed)
  const faultRng = new Rng(o.seed ^ 0xfa17)
  const clusterRng = new Rng(o.seed ^ 0x1055)
  const workload = makeWorkload(o.workload, o.tasks, new Rng(o.seed ^ 0x5eed), { sleepMs: o.scenario.sleepMs })
  const baseDir = await mkdtemp(join(tmpdir(), 'agentmesh-sim-'))
  const taskOptions = { ...simTaskOptions(o.nodes, o.scenario.leaseMs ?? 3_000), ...(o.scenario.maxAttempts === undefined ? {} : { defaultMaxAttempts: o.scenario.maxAttempts }) }
  const cluster: Cluster = o.processes
    ? new ProcessCluster({ baseDir, tasks: taskOptions, rng: clusterRng })
    : new InProcessCluster({ transport: o.transport, tasks: taskOptions, tuning: simNodeTuning(o.nodes), latencyMs: o.scenario.latencyMs, rng: clusterRng, baseDir })
  const traces: TaskTrace[] = []
  // timers a fault left behind (a restart, a heal): cleared when the run ends; one that already
  // fired is awaited, so a node still restarting cannot hold its store open past the stop
  const later = new Set<ReturnType<typeof setTimeout>>()
  const firing = new Set<Promise<unknown>>()
  // each timer's work done (a node restarted), for the run's end to wait on
  const restored: Array<Promise<void>> = []
  const after: After = (ms, fn) => {
    restored.push(new Promise<void>(resolve => {
      const t = setTimeout(() => {
        later.delete(t)
        const done = Promise.resolve().then(fn).catch(() => {})
        firing.add(done)
        void done.finally(() => { firing.delete(done); resolve() })
      }, ms)
      later.add(t)
    }))
  }
  // when the faults whose end the cluster times itself (a pause, a split) end, ms from the start
  let healedBy = 0
  const endsIn = (ms: number, elapsedMs: number): void => { healedBy = Math.max(healedBy, elapsedMs + ms) }
  const faulted: FaultedNodes = { down: new Map(), paused: new Set() }
  const faults: FaultTrace[] = []
  let submitErrors = 0
  let startedAt = Date.now()
  let ended!: { durationMs: number, nodeFigures: NodeFigures[], edges: Array<[number, number]> }
  // an interrupt ends the run where it is: what it started is stopped below, and nothing is reported
  const interrupted = new Promise<never>((_resolve, reject) => {
    const stop = (): void => { reject(new SimInterruptedError('the simulation was interrupted')) }
    if (o.signal?.aborted === true) stop()
    else o.signal?.addEventListener('abort', stop, { once: true })
  })
  interrupted.catch(() => {})
  // the cluster's start, awaited before a stop that an interrupt brings: a node still starting was missed
  let starting: Promise<void> | undefined
  try {
    try {
      await Promise.race([run(), interrupted])
    } finally {
      if (o.signal?.aborted === true) await starting?.catch(() => {})
      for (const timer of later) clearTimeout(timer)
      await Promise.allSettled([...firing])
      // before the stores are read: a LevelDB has one opener at a time
      await cluster.stop()
    }
    // with every node stopped, each store is read as it was left, the killed nodes' too
    const { audit, copies, executions } = await auditStores(cluster, traces)
    const unfinished = new Set(traces.filter(t => t.id !== undefined && t.finishedAt === undefined).map(t => t.id as string))
    const stuck = [...unfinished].slice(0, 3).map(id => `task ${id.slice(0, 12)}: ${copies.filter(c => c.id === id && c.detail !== undefined).map(c => `node ${c.node} ${c.detail as string}`).join(' | ')}`)
    return buildReport({ options: o, cluster, traces, faults, submitErrors, audit, stuck, executions, startedAt, ...ended })
  } finally {
    // an interrupted run's nodes may still be writing as they go: its error is the interrupt, not this
    await rm(baseDir, { recursive: true, force: true, maxRetries: 3 }).catch((err: Error) => { if (o.signal?.aborted !== true) throw err })
  }

  async function run (): Promise<void> {
    // read afresh each time (a call, so the compiler does not take one reading for all)
    const aborted = (): boolean => o.signal?.aborted === true
    starting = cluster.start(o.nodes)
    await starting
    if (aborted()) return
    o.onReady?.(cluster.live().length)
    const t0 = Date.now()
    startedAt = t0
    const applied: Array<Promise<void>> = []
    const timers = o.scenario.faults.map(fault => setTimeout(() => {
      const trace: FaultTrace = { at: Date.now() - t0, kind: fault.kind, detail: '' }
      faults.push(trace)
      applied.push(applyFault(cluster, fault, faultRng, trace, { after, endsIn, faulted }, () => Date.now() - t0)
        .catch(err => { trace.detail += ` (failed: ${String(err.message)})` })
        .finally(() => { o.onFault?.(trace) }))
    }, fault.at))
    // kept as tasks finish, not recounted over every trace on each progress tick or follow loop
    let finished = 0
    let lastFinishedAt = 0
    const progress = setInterval(() => {
      o.onProgress?.({ done: finished, total: o.tasks, live: cluster.live().length, elapsedMs: Date.now() - t0 })
    }, 250)
    // an interrupted run submits and faults nothing more
    const quiet = (): void => {
      clearInterval(progress)
      for (const timer of timers) clearTimeout(timer)
    }
    if (aborted()) quiet()
    else o.signal?.addEventListener('abort', quiet, { once: true })
    const waits: Array<Promise<void>> = []
    const drainUntil = (): number => t0 + Math.max((o.tasks / o.rate) * 1000, lastFinishedAt) + (o.drainMs ?? 60_000)
    for (const [i, spec] of workload.entries()) {
      if (aborted()) break
      const due = t0 + (i / o.rate) * 1000
      if (due > Date.now()) await new Promise(resolve => setTimeout(resolve, due - Date.now()))
      const trace: TaskTrace = { index: i, capability: spec.capability, submittedAt: Date.now() - t0, ok: false }
      traces.push(trace)
      // submits are not awaited one by one: the offered rate must not depend on how fast each answers
      waits.push((async () => {
        // a submit answered by any node counts; a down node or a missing quorum is retried
        // elsewhere after a backoff, as a client would, so a view still settling after a fault can
        for (let attempt = 0; attempt < 5 && trace.id === undefined; attempt++) {
          if (attempt > 0) await new Promise(resolve => setTimeout(resolve, Math.min(2_000, 250 * 2 ** (attempt - 1))))
          const live = cluster.live()
          try {
            trace.id = await cluster.submit(live[rng.int(0, live.length)] as number, spec)
          } catch {
            submitErrors++
          }
        }
        if (trace.id === undefined) return
        await follow(cluster, trace, spec.check, t0, drainUntil)
        if (trace.finishedAt === undefined) return
        finished++
        lastFinishedAt = Math.max(lastFinishedAt, trace.finishedAt)
      })())
    }
    await Promise.all(waits)
    // a task whose split votes a lost member could have certified either way waits for it or an operator: listed, not lost
    const blocked = await cluster.blocked()
    for (const t of traces) if (t.id !== undefined && t.finishedAt === undefined && blocked.has(t.id)) t.state = 'blocked'
    // the scenario's faults are part of the run, even those due after the last task finished
    const lastFault = Math.max(0, ...o.scenario.faults.map(f => f.at))
    if (Date.now() < t0 + lastFault) await new Promise(resolve => setTimeout(resolve, t0 + lastFault - Date.now() + 10))
    await Promise.all(applied)
    // and so is each fault's own end (a restart, a resume, a heal): a run that ended before it
    // reported a node back that never came back, and its scenario tested no restart at all
    await Promise.all(restored)
    if (Date.now() < t0 + healedBy + RESTORE_MARGIN_MS) await new Promise(resolve => setTimeout(resolve, t0 + healedBy + RESTORE_MARGIN_MS - Date.now()))
    clearInterval(progress)
    for (const timer of [...timers, ...later]) clearTimeout(timer)
    const durationMs = Date.now() - t0
    o.onProgress?.({ done: finished, total: o.tasks, live: cluster.live().length, elapsedMs: durationMs })
    ended = { durationMs, nodeFigures: await cluster.figures(), edges: cluster.edges() }
  }
}

/** "At most one accepted result", checked on every node's store and on every read a client made. */
async function auditStores (cluster: Cluster, traces: TaskTrace[]): Promise<{ audit: ResultAudit, copies: StoredCopy[], executions: StoredExecution[] }> {
  const dirs = cluster.dataDirs()
  const { copies, unreadable, executions } = await readStores(dirs)
  const reads = traces.flatMap(t => t.id !== undefined && t.state === 'completed' && t.readFrom !== undefined
    ? [{ id: t.id, node: t.readFrom, claimId: t.claimId, resultHash: t.resultHash }]
    : [])
  return { audit: auditResults(copies, reads, { nodesRead: dirs.length - unreadable.length, unreadable }), copies, executions }
}

/** Waits for one task to finish, asking live nodes in turn, and records what it ended as. */
async function follow (cluster: Cluster, trace: TaskTrace, check: (r: unknown) => boolean, t0: number, until: () => number): Promise<void> {
  while (Date.now() < until()) {
    if (cluster.live().length === 0) {
      await new Promise(resolve => setTimeout(resolve, 200))
      continue
    }
    // long waits: a wait wakes on the completion notice, while each new one asks the replicas again
    const outcome = await cluster.outcome(trace.id as string, Math.min(10_000, Math.max(0, until() - Date.now())))
    if (outcome === undefined || !['completed', 'dead', 'canceled'].includes(outcome.state)) continue
    if (outcome.state === 'completed' && outcome.result === undefined) continue
    trace.finishedAt = Date.now() - t0
    trace.state = outcome.state
    trace.executor = outcome.executor
    trace.readFrom = outcome.node
    trace.claimId = outcome.claimId
    if (outcome.state === 'completed') trace.resultHash = resultHash(outcome.result)
    trace.ok = outcome.state === 'completed' && check(outcome.result)
    return
  }
  // not finished in time: the last word on it, for the "lost" and "unfinished" counts
  const last = cluster.live().length > 0 ? await cluster.outcome(trace.id as string, 0) : undefined
  trace.state = last?.state ?? 'lost'
}
