import { apiRequest, resolveApiUrl, resolveTaskId } from './client.js'
import { clean } from './events-client.js'
import { clientOptions } from './options.js'
import { json, line, shortId, shortPeer } from './output.js'
import type { ClientTarget } from './client.js'
import type { Command } from 'commander'

interface TracedTask {
  id: string
  capability: string
  state: string
  depth: number
  createdAt: number
  finishedAt?: number
  submitter: string
  error?: string
  placement?: { members: string[] }
  /** the members whose signed votes make the final state (a node older than this field sends none) */
  certifiedBy?: string[]
  history: Array<{ peer: string, generation?: number, outcome: string, startedAt: number, endedAt?: number, error?: string }>
}

/** Milliseconds as a short human duration. */
export function duration (ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`
}

/** The timeline, each time counted from the root task's submit: who did what, where, for how long. */
export function renderTrace (traceId: string | undefined, tasks: TracedTask[]): string[] {
  const t0 = tasks[0]?.createdAt ?? 0
  const at = (t: number): string => `+${duration(t - t0)}`.padEnd(12)
  const out = [`trace ${traceId ?? '(none)'}: ${tasks.length} task${tasks.length === 1 ? '' : 's'}`]
  for (const t of tasks) {
    const indent = '  '.repeat(t.depth)
    const took = t.finishedAt === undefined ? 'unfinished' : `in ${duration(t.finishedAt - t.createdAt)}`
    out.push(`${indent}${t.depth === 0 ? '' : '└ '}${shortId(t.id)} ${clean(t.capability)} ${t.state} ${took}`)
    const pad = `${indent}    `
    out.push(`${pad}${at(t.createdAt)} submitted on ${shortPeer(t.submitter)}`)
    // numbered as grants, ctx.attempt and the events feed number them: a run that resumes a wait
    // keeps its number, and a redrive starts again from 1
    const failures = new Map<number, number>()
    for (const a of t.history) {
      const n = (failures.get(a.generation ?? 0) ?? 0) + 1
      if (a.outcome === 'failed' || a.outcome === 'expired') failures.set(a.generation ?? 0, n)
      const span = a.endedAt === undefined ? 'running' : `${a.outcome} after ${duration(a.endedAt - a.startedAt)}`
      out.push(`${pad}${at(a.startedAt)} attempt ${n} on ${shortPeer(a.peer)}: ${span}${a.error === undefined ? '' : ` (${clean(a.error)})`}`)
    }
    const certified = t.certifiedBy === undefined ? '' : `, certified by ${t.certifiedBy.length}${t.placement === undefined ? '' : ` of ${t.placement.members.length}`} (${t.certifiedBy.map(shortPeer).join(', ')})`
    if (t.finishedAt !== undefined) out.push(`${pad}${at(t.finishedAt)} ${t.state}${certified}${t.error === undefined ? '' : `: ${clean(t.error)}`}`)
  }
  return out
}

/** `agentmesh trace ID`: a task's cross-peer timeline and its subtasks', from the records (no collector). */
export function addTraceCommand (program: Command): void {
  clientOptions(program.command('trace <id>'))
    .description('the cross-peer timeline of a task and its subtasks, from the records alone')
    .action(async (id: string, opts: ClientTarget & { json?: boolean }) => {
      const url = await resolveApiUrl(opts)
      const answer = await apiRequest(url, 'GET', `/v1/tasks/${await resolveTaskId(url, id)}/trace`)
      if (opts.json === true) return json(answer)
      for (const l of renderTrace(answer.traceId, answer.tasks)) line(l)
    })
}
