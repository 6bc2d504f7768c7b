import { open, rm, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import cliProgress from 'cli-progress'
import { renderHtml } from '../../sim/html.js'
import { summaryLines } from '../../sim/report.js'
import { runSimulation } from '../../sim/runner.js'
import { WORKLOADS, checkSimRun, loadScenario } from '../../sim/scenario.js'
import { InvalidConfigError } from '../errors.js'
import { makeDirs } from '../store/make-dirs.js'
import { errorLine, line, outputOwner } from './output.js'
import type { SimReport } from '../../sim/report.js'
import type { WorkloadName } from '../../sim/workload.js'

export interface SimFlags {
  nodes?: number
  tasks?: number
  workload?: string
  rate?: number
  scenario?: string
  seed?: number
  transport?: string
  processes?: boolean
  json?: string
  report?: string
}

async function writeOut (path: string, text: string): Promise<void> {
  await makeDirs(dirname(path))
  await writeFile(path, text)
}

/** A report file the run could not write is told before the run, not after it. */
async function checkWritable (flag: string, path: string | undefined): Promise<void> {
  if (path === undefined) return
  // '-' made a file named '-': stdout carries the summary, so a report there would be mixed into it
  if (path === '-') throw new InvalidConfigError(`${flag} takes a file path, not - (stdout carries the summary)`)
  // opened for appending and closed: a report already there stays whole until the run replaces it
  const existed = await stat(path).then(() => true, () => false)
  try {
    await makeDirs(dirname(path))
    await (await open(path, 'a')).close()
  } catch (err: any) {
    throw new InvalidConfigError(`${flag} ${path}: cannot write there (${String(err?.code ?? err?.message)})`)
  }
  if (!existed) await rm(path, { force: true })
}

/** `agentmesh sim`: a workload against many real nodes, faults from a scenario, a report at the end. */
export async function runSimCommand (flags: SimFlags): Promise<SimReport> {
  // its reports are files and its exit code the invariants: a closed pipe on stdout stops neither
  outputOwner.keepGoing = true
  const scenario = await loadScenario(flags.scenario ?? 'steady').catch(err => { throw new InvalidConfigError(err.message) })
  const workload = (flags.workload ?? scenario.workload ?? 'echo') as WorkloadName
  if (!(WORKLOADS as readonly string[]).includes(workload)) throw new InvalidConfigError(`--workload must be one of ${WORKLOADS.join(', ')}`)
  const transport = flags.transport ?? 'memory'
  if (transport !== 'memory' && transport !== 'tcp') throw new InvalidConfigError('--transport must be memory or tcp')
  const nodes = flags.nodes ?? scenario.nodes ?? 5
  const tasks = flags.tasks ?? scenario.tasks ?? 100
  const rate = flags.rate ?? scenario.rate ?? 50
  const seed = flags.seed ?? 1
  const processes = flags.processes === true
  // a run it cannot mean is refused in one line, before it says it starts
  checkSimRun({ nodes, tasks, workload, rate, seed, transport, processes }, scenario)
  await checkWritable('--json', flags.json)
  await checkWritable('--report', flags.report)
  line(`simulating "${scenario.name}": ${plural(nodes, 'node')} ${processes ? 'as child processes' : `in one process (${transport})`}, ${tasks} ${workload} ${tasks === 1 ? 'task' : 'tasks'} at ${rate}/s, seed ${seed}`)
  const bar = process.stderr.isTTY === true
    ? new cliProgress.SingleBar({ format: 'tasks {bar} {value}/{total} | {rate}/s | live nodes {live} | {elapsed}s', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined
  // Ctrl-C stops the run's nodes (a paused one too) and removes its data dirs; a second one exits at once
  const interrupt = new AbortController()
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) {
      errorLine(`second ${signal}: exiting now`)
      process.exit(130)
    }
    bar?.stop()
    errorLine(`${signal}: stopping the simulation's nodes`)
    interrupt.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const report = await runSimulation({
    signal: interrupt.signal,
    scenario,
    nodes,
    tasks,
    workload,
    rate,
    seed,
    transport,
    processes,
    onReady: live => {
      line(`${plural(live, 'node')} up; starting the workload`)
      bar?.start(tasks, 0, { rate: 0, live, elapsed: 0 })
    },
    onFault: f => { if (bar === undefined) line(`fault at ${(f.at / 1000).toFixed(1)} s: ${f.kind}: ${f.detail}`) },
    onProgress: p => bar?.update(p.done, { rate: Math.round(p.done / Math.max(0.001, p.elapsedMs / 1000)), live: p.live, elapsed: Math.round(p.elapsedMs / 1000) })
  }).catch((err: Error) => {
    // by the signal, not the error's name: a failure in an interrupted run's cleanup is the interrupt's too
    if (!interrupt.signal.aborted) throw err
    errorLine('interrupted: its nodes are stopped and its data dirs removed; nothing is reported')
    // the workload's own waits would keep the process up until their deadlines
    process.exit(130)
  }).finally(() => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  })
  bar?.stop()
  for (const l of summaryLines(report)) line(l)
  line(report.note)
  if (flags.json !== undefined) {
    await writeOut(flags.json, JSON.stringify(report, null, 2))
    line(`wrote ${flags.json}`)
  }
  if (flags.report !== undefined) {
    await writeOut(flags.report, renderHtml(report))
    line(`wrote ${flags.report}`)
  }
  if (report.invariants.some(i => !i.ok)) process.exitCode = 1
  return report
}

/** "1 node", "3 nodes" */
function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}
