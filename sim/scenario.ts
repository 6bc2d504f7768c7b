import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { InvalidConfigError } from '../node/errors.js'
import { PACKAGE_ROOT } from '../node/package-root.js'

export const WORKLOADS = ['echo', 'sleep', 'mapreduce', 'mixed'] as const

/** The most nodes one run starts (dozens already share two cores; see the README's Performance). */
export const MAX_NODES = 200
export const MAX_TASKS = 1_000_000

/** How many nodes: at least one, or there is no mesh to test. */
const nodesSchema = z.number().int().min(1, 'a run needs at least 1 node').max(MAX_NODES)
/** How many tasks: zero is allowed, but such a run acknowledges nothing and fails "some task acknowledged". */
const tasksSchema = z.number().int().min(0).max(MAX_TASKS)
const rateSchema = z.number().positive().finite()

const nodeRef = z.union([z.number().int().nonnegative(), z.literal('random'), z.literal('holder')])

/** One fault, at `at` ms after the workload starts. */
export const faultSchema = z.discriminatedUnion('kind', [
  /** kill a node (SIGKILL with --processes); `restartAfterMs` brings it back from its data dir */
  z.object({ kind: z.literal('crash'), at: z.number().int().nonnegative(), node: nodeRef, restartAfterMs: z.number().int().positive().optional() }).strict(),
  /** freeze a node past its leases (SIGSTOP then SIGCONT with --processes; in one process it is cut off from every peer instead) */
  z.object({ kind: z.literal('pause'), at: z.number().int().nonnegative(), node: nodeRef, durationMs: z.number().int().positive() }).strict(),
  /** split the mesh into groups of node indexes for a while */
  z.object({ kind: z.literal('partition'), at: z.number().int().nonnegative(), groups: z.array(z.array(z.number().int().nonnegative()).min(1)).min(2), durationMs: z.number().int().positive() }).strict(),
  /** drop this fraction of gossip messages for a while (streams are reliable, as TCP is) */
  z.object({ kind: z.literal('loss'), at: z.number().int().nonnegative(), fraction: z.number().min(0).max(1), durationMs: z.number().int().positive() }).strict(),
  /** nodes leaving and joining: every `everyMs`, one random node stops and a fresh one joins */
  z.object({ kind: z.literal('churn'), at: z.number().int().nonnegative(), everyMs: z.number().int().positive(), durationMs: z.number().int().positive() }).strict(),
  /** a misbehaving peer publishes `messages` garbage messages onto the task topics */
  z.object({ kind: z.literal('flood'), at: z.number().int().nonnegative(), messages: z.number().int().positive().max(100_000) }).strict()
])

export const scenarioSchema = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  nodes: nodesSchema.optional(),
  tasks: tasksSchema.optional(),
  workload: z.enum(WORKLOADS).optional(),
  rate: rateSchema.optional(),
  /** how long each task of the sleep workload sleeps, ms (default 50..399) */
  sleepMs: z.object({ min: z.number().int().nonnegative(), max: z.number().int().nonnegative().max(3_600_000) }).strict()
    .refine(r => r.min <= r.max, 'min must not exceed max').optional(),
  /** per-node link latency on the memory transport, ms */
  latencyMs: z.number().int().nonnegative().optional(),
  /** lease length for the run (short leases make recovery visible quickly) */
  leaseMs: z.number().int().min(100, 'at least 100 (a shorter lease lapses before a claim is made)').optional(),
  /** attempts a task gets (the nodes' defaultMaxAttempts): a fault that lapses leases spends them */
  maxAttempts: z.number().int().min(1).max(100).optional(),
  faults: z.array(faultSchema).default([])
}).strict()

export type Scenario = z.infer<typeof scenarioSchema>
export type Fault = z.infer<typeof faultSchema>

export class InvalidScenarioError extends Error {
  static override name = 'InvalidScenarioError'
  constructor (message: string) { super(message); this.name = 'InvalidScenarioError' }
}

/** What one run is, after flags and the scenario's own values are resolved: checked before any node starts. */
export const simRunSchema = z.object({
  nodes: nodesSchema,
  tasks: tasksSchema,
  workload: z.enum(WORKLOADS),
  rate: rateSchema,
  seed: z.number().int().nonnegative(),
  transport: z.enum(['memory', 'tcp']),
  processes: z.boolean()
})

export type SimRun = z.infer<typeof simRunSchema>

const issues = (err: z.ZodError): string => err.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')

/**
 * Checks one run's values, and that the scenario's faults name only nodes the run starts (a
 * partition of nodes 3..5 in a run of 3 would split nothing). Throws InvalidConfigError, a user
 * error the CLI prints as one line.
 */
export function checkSimRun (run: SimRun, scenario: Scenario): void {
  const parsed = simRunSchema.safeParse(run)
  if (!parsed.success) throw new InvalidConfigError(`simulation options: ${issues(parsed.error)}`)
  const wrong: string[] = []
  scenario.faults.forEach((fault, i) => {
    const named = 'groups' in fault ? fault.groups.flat() : 'node' in fault && typeof fault.node === 'number' ? [fault.node] : []
    const missing = named.filter(n => n >= run.nodes)
    if (missing.length > 0) wrong.push(`faults.${i} (${fault.kind}) names node ${missing.join(', ')}, but the run has ${run.nodes} node${run.nodes === 1 ? '' : 's'} (0..${run.nodes - 1})`)
    // a node in two groups is cut off from neither: such a split tests nothing
    const twice = named.filter((n, k) => named.indexOf(n) !== k)
    if ('groups' in fault && twice.length > 0) wrong.push(`faults.${i} (${fault.kind}) names node ${[...new Set(twice)].join(', ')} more than once: in two groups it is cut off from neither`)
    // a node in no group is cut off from nobody: it links the groups, and the split cuts nothing between them
    const outside = 'groups' in fault ? Array.from({ length: run.nodes }, (_, n) => n).filter(n => !named.includes(n)) : []
    if (outside.length > 0) wrong.push(`faults.${i} (${fault.kind}) puts node ${outside.join(', ')} in no group: each links the groups, so the split cuts nothing; name every node of the run (0..${run.nodes - 1})`)
    // refused before any node starts: failing at its time, the fault tested nothing and the run passed
    if (run.processes && (fault.kind === 'partition' || fault.kind === 'loss')) wrong.push(`faults.${i} (${fault.kind}) needs the nodes in one process: run it without --processes`)
  })
  // nothing left to finish the work: the run waited out its drain and failed "no task lost" with no node live
  const crashes = scenario.faults.filter(f => f.kind === 'crash')
  // distinct nodes: a second crash of one node is skipped at run time
  const named = new Set(crashes.flatMap(f => typeof f.node === 'number' ? [f.node] : []))
  const forGood = named.size + crashes.filter(f => typeof f.node !== 'number').length
  if (forGood >= run.nodes && crashes.every(f => f.restartAfterMs === undefined)) wrong.push(`crashes without restartAfterMs take down all ${run.nodes} node${run.nodes === 1 ? '' : 's'} for good: restart one, or run more nodes`)
  // the added latency is the memory transport's: over TCP or between processes it was not added
  if ((scenario.latencyMs ?? 0) > 0 && (run.processes || run.transport !== 'memory')) wrong.push(`latencyMs (${scenario.latencyMs}) needs the memory transport in one process: run it without --processes and --transport tcp`)
  if (wrong.length > 0) throw new InvalidConfigError(`scenario "${scenario.name}": ${wrong.join('; ')}`)
}

/** The bundled scenarios: sim/scenarios in the package. */
export const SCENARIOS_DIR = join(PACKAGE_ROOT, 'sim', 'scenarios')

/** A scenario by bundled name (`crash`) or by path to a JSON file; checked against the schema. */
export async function loadScenario (nameOrFile: string): Promise<Scenario> {
  const bundled = join(SCENARIOS_DIR, `${nameOrFile}.json`)
  const path = existsSync(bundled) ? bundled : nameOrFile
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    throw new InvalidScenarioError(`no scenario "${nameOrFile}" (not a bundled name, and ${path}: ${err.code ?? err.message})`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err: any) {
    throw new InvalidScenarioError(`scenario ${path} is not valid JSON: ${err.message}`)
  }
  const parsed = scenarioSchema.safeParse(json)
  if (!parsed.success) {
    throw new InvalidScenarioError(`scenario ${path}: ${issues(parsed.error)}`)
  }
  return parsed.data
}
