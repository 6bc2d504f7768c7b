/*
 * `npm run bench -- daemons`: throughput of real `agentmesh node` daemons on 127.0.0.1, driven only
 * through the control API as a client would (round-robin, one `POST /v1/tasks?wait=` a task, or a
 * submit and then a long poll for the result), in a closed loop. Every run is bounded in time; a task that fails or times out is counted, never
 * waited on past its bound.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { line } from '../node/cli/output.js'
import { startDaemonProcess } from './daemon-process.js'
import { requestJson } from './http-client.js'
import { percentile } from './report.js'
import { waitFor } from './wait.js'
import type { DaemonProcess } from './daemon-process.js'
import type { JsonAnswer } from './http-client.js'

/** bench.ts's row helper: one line of the closing table. */
export type AddRow = (what: string, figure: string, note?: string) => void

export interface DaemonBenchInit {
  /** mesh sizes, one mesh of daemons each. @default [3, 5, 10] */
  nodes?: number[]
  /** task options of every daemon's config file, for an A/B of one option. @default {} (the defaults) */
  taskOptions?: Record<string, number | boolean>
  /** gossip options of every daemon's config file (see node/gossip-tuning.ts), for an A/B. @default {} (the defaults) */
  gossip?: Record<string, number | boolean>
  /** tasks kept in flight by the closed loop; 1 is one at a time. @default [1, 16, 64, 256] */
  concurrency?: number[]
  /** how long a loaded run keeps submitting. @default 10_000 */
  runMs?: number
  /** the most tasks a loaded run submits. @default 5_000 */
  maxTasks?: number
  /**
   * tasks of the one-at-a-time run: 100 made its p99 the second-worst task, and its p50 leaned on
   * the first tasks after the warm-up's load. @default 500
   */
  serialTasks?: number
  /** how long the one-at-a-time run may keep submitting. @default 60_000 */
  serialRunMs?: number
  /** idle CPU is measured over this long once the mesh has formed, and again once it settled. @default 10_000 */
  idleMs?: number
  /** the second idle measurement starts this long after the first ends: start-up's garbage collected, the first lookups done. @default 20_000 */
  idleSettleMs?: number
  /** ?wait= of the result long poll; a task unfinished by then counts as timed out. @default 30_000 */
  resultWaitMs?: number
  /**
   * How the client asks: 'one' request a task (`POST /v1/tasks?wait=`), or 'two' (the submit, then
   * `GET /v1/tasks/:id/result?wait=`, as before that existed). @default 'one'
   */
  requests?: 'one' | 'two'
  /**
   * Which daemons take the client's submits, a run each at every concurrency: 'every' daemon in
   * turn, or only the 'first' (the others then only answer as members of placements): the same
   * messages a task, with the other daemons mostly idle. @default ['every']
   */
  entries?: Array<'every' | 'first'>
  /**
   * Tasks run at 16 in flight after the idle figures and before the measured runs, not counted, for
   * each daemon of the mesh: a daemon runs for days, and a fresh one spends its first few hundred
   * tasks compiling its hot code. A fixed total warmed each of 10 daemons a third as much as each of
   * 3, and one at a time the less warm mesh looked slower for it. @default 400
   */
  warmupTasksPerDaemon?: number
  /**
   * Idle CPU and memory are measured a third time this long after the last run: a daemon that has
   * run thousands of tasks and keeps them (anti-entropy compares them, the sweeper reads them),
   * past start-up's tail. 0: not measured. @default 60_000
   */
  restMs?: number
}

const SUBMIT_TIMEOUT_MS = 30_000
const MESH_TIMEOUT_MS = 120_000

/** Clock ticks a second, the unit of utime and stime in /proc/<pid>/stat. */
function clockTicks (): number {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
}

/** utime + stime of a process, in ticks (all its threads); 0 once it is gone. */
function cpuTicks (pid: number): number {
  try {
    // fields after the command name, which is in parentheses and may hold spaces: state is field 3
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(rest[11]) + Number(rest[12])
  } catch { return 0 }
}

/** Context switches of all a process's threads: voluntary (it waited) and involuntary (it was preempted). */
function contextSwitches (pid: number): { voluntary: number, involuntary: number } {
  const total = { voluntary: 0, involuntary: 0 }
  let tids: string[] = []
  try { tids = readdirSync(`/proc/${pid}/task`) } catch {}
  for (const tid of tids) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
      total.voluntary += Number(status.match(/^voluntary_ctxt_switches:\s+(\d+)/m)?.[1] ?? 0)
      total.involuntary += Number(status.match(/^nonvoluntary_ctxt_switches:\s+(\d+)/m)?.[1] ?? 0)
    } catch {}
  }
  return total
}

/** utime and stime of a process's main thread, and of all its other threads (libuv's pool, V8's helpers), in ticks. */
interface CpuSplit { mainUser: number, mainSys: number, others: number }

function cpuSplit (pid: number): CpuSplit {
  const split: CpuSplit = { mainUser: 0, mainSys: 0, others: 0 }
  let tids: string[] = []
  try { tids = readdirSync(`/proc/${pid}/task`) } catch {}
  for (const tid of tids) {
    // a thread may end between the listing and its read: it is left out, the others still count
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const user = Number(rest[11])
      const sys = Number(rest[12])
      if (Number(tid) === pid) {
        split.mainUser += user
        split.mainSys += sys
      } else split.others += user + sys
    } catch {}
  }
  return split
}

function sumSplits (pids: number[]): CpuSplit {
  return pids.map(cpuSplit).reduce((a, b) => ({ mainUser: a.mainUser + b.mainUser, mainSys: a.mainSys + b.mainSys, others: a.others + b.others }), { mainUser: 0, mainSys: 0, others: 0 })
}

/**
 * A process's memory in MiB, from one read of /proc: resident (RSS), proportional (PSS: each page
 * shared with other processes counted in shares) and unique (USS: pages no other process maps,
 * what its exit frees). RSS counts the Node binary's code (about 53 MiB resident) whole in every
 * daemon, though the machine holds it once for all of them. Zeros once the process is gone.
 */
function memoryMiB (pid: number): { rss: number, pss: number, uss: number } {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
    const kb = (field: string): number => Number(rollup.match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'))?.[1] ?? 0)
    return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024, uss: (kb('Private_Clean') + kb('Private_Dirty')) / 1024 }
  } catch { return { rss: 0, pss: 0, uss: 0 } }
}

/** The counters a run reads, summed over every daemon. */
interface Counters { gossip: number, rpc: number, claimsDenied: number, claimsDeferred: number, duplicates: number, apiErrors: number, groupCommits: number, syncedCommits: number, votes: number, voteSignatures: number, handoffs: number, handoffsDeclined: number, handoffsSuspected: number, handoffsSlow: number }

async function counters (daemons: DaemonProcess[]): Promise<Counters> {
  const all = await Promise.all(daemons.map(async d => (await requestJson(`${d.api}/v1/metrics`, { timeoutMs: 10_000 })).body))
  const sum = (get: (m: any) => number | undefined): number => all.reduce((acc, m) => acc + (get(m) ?? 0), 0)
  return {
    // no publish counter exists: what the task layer received, announcements and completion notices
    gossip: sum(m => m.claims?.announcementsSeen) + sum(m => m.tasks?.noticesApplied),
    rpc: sum(m => m.rpc?.lease?.requestsSent) + sum(m => m.rpc?.records?.requestsSent),
    claimsDenied: sum(m => m.claims?.claimsDenied),
    claimsDeferred: sum(m => m.claims?.claimsDeferred),
    duplicates: sum(m => m.executions?.duplicateExecutions),
    apiErrors: sum(m => m.api?.internalErrors),
    groupCommits: sum(m => m.store?.groupCommits),
    syncedCommits: sum(m => m.store?.syncedCommits),
    votes: sum(m => m.replica?.votes),
    voteSignatures: sum(m => m.replica?.voteSignatures),
    handoffs: sum(m => m.handoffs?.sent),
    handoffsDeclined: sum(m => m.handoffs?.declined),
    handoffsSuspected: sum(m => m.handoffs?.suspected),
    handoffsSlow: sum(m => m.handoffs?.slow)
  }
}

type Outcome = { kind: 'completed', ms: number } | { kind: 'refused' | 'failed' | 'timed out', why: string }

/** A submit the daemon did not take: neither 202 (created) nor 200 (known). */
const notAccepted = (res: { status: number }): boolean => res.status !== 202 && res.status !== 200
const refusedBy = (res: { status: number, body: any }): Outcome => ({ kind: 'refused', why: `submit ${res.status} ${String(res.body?.error?.name ?? '')}`.trim() })

/** One task as a client sees it: submitted to one daemon, its result long-polled on the same daemon. */
async function oneTask (d: DaemonProcess, i: number, waitMs: number, requests: 'one' | 'two'): Promise<Outcome> {
  const t0 = performance.now()
  const body = JSON.stringify({ capability: 'echo', input: { i } })
  const submit = async (query: string, timeoutMs: number): Promise<JsonAnswer> => requestJson(`${d.api}/v1/tasks${query}`, { method: 'POST', body, timeoutMs })
  let res: JsonAnswer
  if (requests === 'one') {
    try {
      res = await submit(`?wait=${waitMs}`, waitMs + SUBMIT_TIMEOUT_MS)
    } catch (err: any) {
      // one request: a lost answer may be a lost submit or a lost wait, so it is not called refused
      return { kind: err.name === 'TimeoutError' ? 'timed out' : 'failed', why: `submit and wait ${String(err.name)}` }
    }
    if (notAccepted(res)) return refusedBy(res)
  } else {
    let id: string
    try {
      const sub = await submit('', SUBMIT_TIMEOUT_MS)
      if (notAccepted(sub)) return refusedBy(sub)
      id = String(sub.body.id)
    } catch (err: any) {
      return { kind: 'refused', why: `submit ${String(err.name)}` }
    }
    try {
      res = await requestJson(`${d.api}/v1/tasks/${id}/result?wait=${waitMs}`, { timeoutMs: waitMs + 10_000 })
    } catch (err: any) {
      return { kind: err.name === 'TimeoutError' ? 'timed out' : 'failed', why: `result ${String(err.name)}` }
    }
  }
  if (res.status === 202) return { kind: 'timed out', why: `still ${String(res.body?.state)} after ${waitMs} ms` }
  if (res.status !== 200) return { kind: 'failed', why: `result ${res.status} ${String(res.body?.error?.name ?? '')}`.trim() }
  if (res.body.state !== 'completed') return { kind: 'failed', why: `ended ${String(res.body.state)}` }
  return { kind: 'completed', ms: performance.now() - t0 }
}

interface RunResult {
  completed: number
  refused: number
  failed: number
  timedOut: number
  /** completed tasks over the whole run, from the first submit to the last answer */
  perSec: number
  latencies: number[]
  cpuMsPerTask: number
  /** the same, less what the daemons burn idle over as long (measured before the runs) */
  cpuMsPerTaskNetOfIdle: number
  /** ms of CPU per task the bench process spent (the client, not counted in the figures) */
  clientMsPerTask: number
  /** ms per task: the daemons' main threads in user and system time, and their other threads */
  split: CpuSplit
  /** ms of CPU per task of each daemon, in start order */
  perDaemonMs: number[]
  /** context switches per task, all daemons' threads: they waited, or were preempted */
  switches: { voluntary: number, involuntary: number }
  before: Counters
  after: Counters
  why: Map<string, number>
}

/** How a loop's client asks, and what its CPU figures are read against. */
interface LoopClient {
  waitMs: number
  requests: 'one' | 'two'
  entry: 'every' | 'first'
  /** clock ticks a second */
  ticks: number
  /** what the daemons burn together idle, in ticks a second */
  idleTicksPerSec: number
}

/**
 * A closed loop: `concurrency` workers each submit a task (round-robin over the daemons), wait for
 * its result, and go again, until `maxTasks` are submitted or `runMs` has passed; then the tasks in
 * flight finish (each bounded by its own timeouts).
 */
async function closedLoop (daemons: DaemonProcess[], concurrency: number, maxTasks: number, runMs: number, client: LoopClient): Promise<RunResult> {
  const { waitMs, ticks, idleTicksPerSec, requests, entry } = client
  const before = await counters(daemons)
  const pids = daemons.map(d => d.proc.pid as number)
  const split0 = sumSplits(pids)
  const each0 = pids.map(cpuTicks)
  const switches0 = pids.map(contextSwitches)
  const client0 = process.cpuUsage()
  const start = performance.now()
  const stopAt = start + runMs
  let next = 0
  const latencies: number[] = []
  const why = new Map<string, number>()
  const counts = { completed: 0, refused: 0, failed: 0, timedOut: 0 }
  const worker = async (): Promise<void> => {
    while (next < maxTasks && performance.now() < stopAt) {
      const i = next++
      const outcome = await oneTask(daemons[entry === 'first' ? 0 : i % daemons.length] as DaemonProcess, i, waitMs, requests)
      if (outcome.kind === 'completed') {
        counts.completed++
        latencies.push(outcome.ms)
      } else {
        counts[outcome.kind === 'timed out' ? 'timedOut' : outcome.kind]++
        why.set(outcome.why, (why.get(outcome.why) ?? 0) + 1)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - start) / 1000
  const split1 = sumSplits(pids)
  const each1 = pids.map(cpuTicks)
  const switches1 = pids.map(contextSwitches)
  const spent = each1.map((t, k) => t - (each0[k] as number))
  const cpu = spent.reduce((a, b) => a + b, 0)
  const switchesPerTask = (kind: 'voluntary' | 'involuntary'): number => switches1.reduce((acc, x, k) => acc + x[kind] - (switches0[k] as typeof x)[kind], 0) / Math.max(1, counts.completed)
  const client1 = process.cpuUsage(client0)
  const perTask = (t: number): number => t / ticks * 1000 / Math.max(1, counts.completed)
  const after = await counters(daemons)
  latencies.sort((a, b) => a - b)
  return {
    ...counts,
    perSec: counts.completed / seconds,
    latencies,
    cpuMsPerTask: perTask(cpu),
    cpuMsPerTaskNetOfIdle: perTask(cpu - idleTicksPerSec * seconds),
    clientMsPerTask: (client1.user + client1.system) / 1000 / Math.max(1, counts.completed),
    perDaemonMs: spent.map(perTask),
    switches: { voluntary: switchesPerTask('voluntary'), involuntary: switchesPerTask('involuntary') },
    split: { mainUser: perTask(split1.mainUser - split0.mainUser), mainSys: perTask(split1.mainSys - split0.mainSys), others: perTask(split1.others - split0.others) },
    before,
    after,
    why
  }
}

async function startMesh (dir: string, n: number, config: string): Promise<DaemonProcess[]> {
  const daemons: DaemonProcess[] = []
  try {
    for (let i = 0; i < n; i++) {
      const boot = daemons[0]?.addrs[0]
      daemons.push(await startDaemonProcess(['--data', join(dir, `node-${i}`), '--api', '127.0.0.1:0', '--config', config, ...(boot === undefined ? [] : ['--bootstrap', boot])], { timeoutMs: 60_000 }))
    }
  } catch (err) {
    for (const d of daemons) d.proc.kill('SIGKILL')
    throw err
  }
  return daemons
}

/** Every daemon is connected to every other and sees each one offer echo in presence. */
async function meshFormed (daemons: DaemonProcess[]): Promise<boolean> {
  for (const d of daemons) {
    const others = daemons.filter(o => o !== d).map(o => o.peerId)
    const peers = new Set((await requestJson(`${d.api}/v1/peers`, { timeoutMs: 10_000 })).body.peers.map((p: { peerId: string }) => p.peerId))
    const caps = (await requestJson(`${d.api}/v1/capabilities`, { timeoutMs: 10_000 })).body.capabilities
    const echo = new Set((caps.find((c: { name: string }) => c.name === 'echo')?.peers ?? []).map((p: { peerId: string }) => p.peerId))
    if (!others.every(p => peers.has(p) && echo.has(p))) return false
  }
  return true
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

/** The daemons' CPU (% of a core) and RSS over `ms` of idling: a bench row's figure and note, and the ticks a second they burn together. */
async function idleCost (pids: number[], ticks: number, ms: number): Promise<{ figure: string, note: string, ticksPerSec: number }> {
  const before = pids.map(cpuTicks)
  await delay(ms)
  const spent = pids.map((pid, i) => cpuTicks(pid) - (before[i] as number))
  const pct = spent.map(t => t / ticks / (ms / 1000) * 100)
  const memory = pids.map(memoryMiB)
  const rss = memory.map(m => m.rss)
  return {
    figure: `${mean(pct).toFixed(1)}% CPU, ${Math.round(mean(rss))} MiB RSS`,
    note: `mean of ${pids.length} (max ${Math.max(...pct).toFixed(1)}%, ${Math.round(Math.max(...rss))} MiB); PSS ${Math.round(mean(memory.map(m => m.pss)))} MiB, USS ${Math.round(mean(memory.map(m => m.uss)))} MiB (the binary's code shared, counted in shares or not at all)`,
    ticksPerSec: spent.reduce((a, b) => a + b, 0) / (ms / 1000)
  }
}

/** Per mesh size: the mesh's idle cost, then a one-at-a-time run and closed loops at each concurrency; one `add` row each. */
export async function benchDaemons (add: AddRow, init: DaemonBenchInit = {}): Promise<void> {
  const ticks = clockTicks()
  const idleMs = init.idleMs ?? 10_000
  const waitMs = init.resultWaitMs ?? 30_000
  const requests = init.requests ?? 'one'
  const entries = init.entries ?? ['every']
  // the clients' rows side by side in one table: told apart by name
  const label = requests === 'one' ? '' : 'two requests a task: '
  // alone, the every-daemon rows keep the names earlier stops' figures were quoted under
  const entryLabel = (entry: 'every' | 'first'): string => entry === 'first' ? 'all submits to one daemon: ' : entries.includes('first') ? 'submits to every daemon in turn: ' : ''
  add('daemons: how to read the rows', '', `real daemons (echo only) over HTTP, closed loop, ${requests === 'one' ? 'one POST /v1/tasks?wait= a task' : 'a submit and a result long poll a task'}, to every daemon in turn (rows named "all submits to one daemon": to the first only); tasks/s: completed tasks from the first submit to the last answer (submits stop after ~10 s or a task count, then the tasks in flight finish); CPU: utime+stime of all daemons per completed task (and net of their idle CPU); gossip: announcements seen + notices applied, summed over daemons (no publish counter exists); RPC: lease + records requests sent`)
  for (const n of init.nodes ?? [3, 5, 10]) {
    const daemonsN = n === 1 ? '1 daemon' : `${n} daemons`
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-bench-daemons-'))
    let daemons: DaemonProcess[] = []
    try {
      const config = join(dir, 'config.json')
      // default timers: placement, claims and presence as a real mesh runs them
      await writeFile(config, JSON.stringify({ agents: ['echo'], ...(init.taskOptions === undefined ? {} : { tasks: init.taskOptions }), ...(init.gossip === undefined ? {} : { gossip: init.gossip }) }))
      const t0 = Date.now()
      daemons = await startMesh(dir, n, config)
      const startedMs = Date.now() - t0
      await waitFor(async () => meshFormed(daemons), { what: `${n} daemons to see each other`, timeoutMs: MESH_TIMEOUT_MS, intervalMs: 250 })
      const meshMs = Date.now() - t0
      line(`  ${daemonsN}: all ready ${(startedMs / 1000).toFixed(1)} s after the first start (one after another), mesh formed ${((meshMs - startedMs) / 1000).toFixed(1)} s later`)
      const pids = daemons.map(d => d.proc.pid as number)
      const formed = await idleCost(pids, ticks, idleMs)
      add(`${label}${daemonsN} idle, per daemon, just formed`, formed.figure, `${formed.note} over the first ${idleMs / 1000} s once the mesh formed; ready one after another in ${(startedMs / 1000).toFixed(1)} s, mesh formed ${((meshMs - startedMs) / 1000).toFixed(1)} s later`)
      const settleMs = init.idleSettleMs ?? 20_000
      await delay(settleMs)
      const settled = await idleCost(pids, ticks, idleMs)
      add(`${label}${daemonsN} idle, per daemon, settled`, settled.figure, `${settled.note} over ${idleMs / 1000} s from ${Math.round((idleMs + settleMs) / 1000)} s after the mesh formed`)
      const client: LoopClient = { waitMs, requests, entry: 'every', ticks, idleTicksPerSec: settled.ticksPerSec }
      const warmupTasks = (init.warmupTasksPerDaemon ?? 400) * n
      if (warmupTasks > 0) {
        const w = await closedLoop(daemons, 16, warmupTasks, 60_000, client)
        line(`    warm-up (not counted): ${w.completed} tasks at 16 in flight, ${w.perSec.toFixed(1)} tasks/s, CPU ${w.cpuMsPerTask.toFixed(1)} ms/task`)
      }
      for (const c of init.concurrency ?? [1, 16, 64, 256]) for (const entry of entries) {
        const r = c === 1
          ? await closedLoop(daemons, 1, init.serialTasks ?? 500, init.serialRunMs ?? 60_000, { ...client, entry })
          : await closedLoop(daemons, c, init.maxTasks ?? 5_000, init.runMs ?? 10_000, { ...client, entry })
        const dead = daemons.filter(d => d.proc.exitCode !== null || d.proc.signalCode !== null)
        if (dead.length > 0) throw new Error(`${dead.length} daemon(s) exited during the run:\n${dead[0]!.output().slice(-2000)}`)
        const per = (get: (x: Counters) => number, digits = 1): string => ((get(r.after) - get(r.before)) / Math.max(1, r.completed)).toFixed(digits)
        add(`${label}${entryLabel(entry)}${daemonsN}, ${c === 1 ? 'one at a time' : `${c} in flight`}`, `${r.perSec.toFixed(1)} tasks/s`,
          `CPU ${r.cpuMsPerTask.toFixed(1)} ms/task (${r.cpuMsPerTaskNetOfIdle.toFixed(1)} net of idle), p50/p99 ${Math.round(percentile(r.latencies, 50))}/${Math.round(percentile(r.latencies, 99))} ms, gossip ${per(x => x.gossip)}/task, RPC ${per(x => x.rpc)}/task; ${r.completed} done, ${r.refused} refused, ${r.failed} failed, ${r.timedOut} timed out`)
        const extra = [`CPU ms/task: main threads ${r.split.mainUser.toFixed(1)} user + ${r.split.mainSys.toFixed(1)} system, other threads ${r.split.others.toFixed(1)}`, `claims denied ${per(x => x.claimsDenied)}/task`, `LevelDB batches ${per(x => x.groupCommits, 2)}/task (${per(x => x.syncedCommits, 2)} fsynced)`, `votes ${per(x => x.votes, 2)}/task in ${per(x => x.voteSignatures, 2)} signatures`, `claims deferred (lag) ${r.after.claimsDeferred - r.before.claimsDeferred}`, `handoffs ${per(x => x.handoffs, 2)}/task (${r.after.handoffsDeclined - r.before.handoffsDeclined} declined, ${r.after.handoffsSlow - r.before.handoffsSlow} slow and ${r.after.handoffsSuspected - r.before.handoffsSuspected} silent past handoffSuspectMs)`, `duplicate executions ${r.after.duplicates - r.before.duplicates}`, `API 500s ${r.after.apiErrors - r.before.apiErrors}`, `the bench's client ${r.clientMsPerTask.toFixed(2)} ms/task (not counted)`, `by daemon ${r.perDaemonMs.map(x => x.toFixed(2)).join(' / ')} ms/task`, `context switches ${r.switches.voluntary.toFixed(1)} waited + ${r.switches.involuntary.toFixed(1)} preempted a task`]
        line(`    ${extra.join(', ')}${r.why.size === 0 ? '' : `; not completed: ${[...r.why].map(([w, k]) => `${k} x ${w}`).join(', ')}`}`)
      }
      const loadedRss = pids.map(pid => memoryMiB(pid).rss)
      line(`    RSS after the runs: mean ${Math.round(mean(loadedRss))} MiB, max ${Math.round(Math.max(...loadedRss))} MiB per daemon`)
      const restMs = init.restMs ?? 60_000
      if (restMs > 0) {
        await delay(restMs)
        const rest = await idleCost(pids, ticks, idleMs)
        add(`${label}${daemonsN} idle, per daemon, at rest after the runs`, rest.figure, `${rest.note} over ${idleMs / 1000} s from ${Math.round(restMs / 1000)} s after the last run, holding the tasks it ran`)
      }
    } finally {
      for (const d of daemons) d.proc.kill('SIGKILL')
      await Promise.all(daemons.map(async d => Promise.race([d.exited, delay(5_000)])))
      await rm(dir, { recursive: true, force: true })
    }
  }
}
