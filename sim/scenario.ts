import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { PACKAGE_ROOT } from '../node/package-root.js'

export const WORKLOADS = ['echo', 'sleep', 'mapreduce', 'mixed'] as const

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
  nodes: z.number().int().min(1).max(200).optional(),
  tasks: z.number().int().min(1).max(1_000_000).optional(),
  workload: z.enum(WORKLOADS).optional(),
  rate: z.number().positive().optional(),
  /** per-node link latency on the memory transport, ms */
  latencyMs: z.number().int().nonnegative().optional(),
  /** lease length for the run (short leases make recovery visible quickly) */
  leaseMs: z.number().int().positive().optional(),
  faults: z.array(faultSchema).default([])
}).strict()

export type Scenario = z.infer<typeof scenarioSchema>
export type Fault = z.infer<typeof faultSchema>

export class InvalidScenarioError extends Error {
  static override name = 'InvalidScenarioError'
  constructor (message: string) { super(message); this.name = 'InvalidScenarioError' }
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
    throw new InvalidScenarioError(`scenario ${path}: ${parsed.error.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
  }
  return parsed.data
}
