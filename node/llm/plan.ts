import { z } from 'zod'
import type { AgentContext } from '../runtime/agent.js'

export const planSchema = z.object({
  steps: z.array(z.object({
    id: z.string().min(1).max(64),
    capability: z.string().min(1),
    input: z.json(),
    dependsOn: z.array(z.string()).default([])
  })).min(1).max(100)
})

export type Plan = z.infer<typeof planSchema>

/** The plan in a model's reply (code fences allowed), checked: schema, known capabilities, known dependencies, no cycle, each `$ref` on a step it depends on. */
export function parsePlan (text: string, capabilities: Set<string>): { ok: true, plan: Plan } | { ok: false, error: string, unoffered?: true } {
  const json = text.replace(/^[^{]*/s, '').replace(/[^}]*$/s, '')
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return { ok: false, error: 'not JSON' }
  }
  const parsed = planSchema.safeParse(value)
  if (!parsed.success) return { ok: false, error: parsed.error.issues.map(i => `${i.path.join('.')}: ${i.message}`).join('; ') }
  const ids = new Set<string>()
  for (const step of parsed.data.steps) {
    if (ids.has(step.id)) return { ok: false, error: `step id ${step.id} is used twice` }
    ids.add(step.id)
    if (!capabilities.has(step.capability)) return { ok: false, error: `step ${step.id}: no live peer offers ${step.capability}`, unoffered: true }
  }
  for (const step of parsed.data.steps) {
    for (const dep of step.dependsOn) if (!ids.has(dep)) return { ok: false, error: `step ${step.id} depends on unknown step ${dep}` }
  }
  const waves = order(parsed.data)
  if (waves === undefined) return { ok: false, error: 'the dependencies form a cycle' }
  const refError = refProblem(waves, ids)
  if (refError !== undefined) return { ok: false, error: refError }
  return { ok: true, plan: parsed.data }
}

const REF = '$ref:'

/**
 * A `$ref:<id>` that no result can fill when its step runs: an unknown step, or one the step does
 * not depend on (directly or through others), which may not have run yet. Such a reference became
 * nothing, and the plan completed with a wrong input, or died of it after every retry.
 */
function refProblem (waves: Plan['steps'][], ids: Set<string>): string | undefined {
  const before = new Map<string, Set<string>>()
  for (const wave of waves) {
    for (const step of wave) {
      const deps = new Set<string>()
      for (const dep of step.dependsOn) for (const id of [dep, ...(before.get(dep) ?? [])]) deps.add(id)
      before.set(step.id, deps)
      for (const ref of refsIn(step.input)) {
        if (!ids.has(ref)) return `step ${step.id} refers to unknown step ${ref} ("${REF}${ref}")`
        if (!deps.has(ref)) return `step ${step.id} refers to step ${ref} ("${REF}${ref}") but does not depend on it: add "${ref}" to its dependsOn`
      }
    }
  }
  return undefined
}

function refsIn (value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith(REF) ? [value.slice(REF.length)] : []
  if (Array.isArray(value)) return value.flatMap(refsIn)
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(refsIn)
  return []
}

/** Waves of steps: each wave depends only on earlier ones. Undefined for a cycle. */
export function order (plan: Plan): Plan['steps'][] | undefined {
  const done = new Set<string>()
  const waves: Plan['steps'][] = []
  let rest = plan.steps
  while (rest.length > 0) {
    const wave = rest.filter(s => s.dependsOn.every(d => done.has(d)))
    if (wave.length === 0) return undefined
    waves.push(wave)
    for (const s of wave) done.add(s.id)
    rest = rest.filter(s => !done.has(s.id))
  }
  return waves
}

function resolveRefs (value: unknown, results: Record<string, unknown>): unknown {
  if (typeof value === 'string' && value.startsWith(REF)) return results[value.slice(REF.length)]
  if (Array.isArray(value)) return value.map(v => resolveRefs(v, results))
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveRefs(v, results)]))
  return value
}

/** Runs the steps on the mesh in dependency order, each wave in parallel; every step is durable. */
export async function runPlan (ctx: AgentContext, plan: Plan): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {}
  for (const wave of order(plan) ?? []) {
    const values = await Promise.all(wave.map(async step => ctx.step(`plan:step:${step.id}`, async () => ctx.submit(step.capability, resolveRefs(step.input, results)))))
    wave.forEach((step, i) => { results[step.id] = values[i] })
  }
  return results
}
