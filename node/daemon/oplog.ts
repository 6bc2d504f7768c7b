import { pino } from 'pino'
import pretty from 'pino-pretty'
import type { AgentNode } from '../create-node.js'
import type { DeadEvent, LeaseLostEvent, RanEvent } from '../tasks/events.js'

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export const LOG_FORMATS = ['pretty', 'json'] as const
export type LogLevel = typeof LOG_LEVELS[number]
export type LogFormat = typeof LOG_FORMATS[number]
export type OperatorLog = pino.Logger

/**
 * The daemon's operator log on pino, to stderr (stdout carries the CLI's own lines): one line per
 * event an operator acts on. Written synchronously, so the last lines before an exit are not lost.
 * libp2p's DEBUG logging stays what it is, for developers.
 */
export function createOperatorLog (level: LogLevel, format: LogFormat): OperatorLog {
  const base = operatorLogOptions(level)
  return format === 'json'
    ? pino(base, pino.destination({ dest: 2, sync: true }))
    : pino(base, pretty({ destination: 2, sync: true, colorize: false, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', hideObject: true }))
}

/** The operator log's pino options, whatever it writes to. */
export function operatorLogOptions (level: LogLevel): pino.LoggerOptions {
  return {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    // an agent's or a model's error can be megabytes: a line says what happened, not all of it
    hooks: { logMethod (this: pino.Logger, args: Parameters<pino.LogFn>, method: pino.LogFn) { method.apply(this, args.map(a => clip(a)) as Parameters<pino.LogFn>) } }
  }
}

/** The longest string the operator log writes, as a line's message, an argument or a field of its object. */
export const LOG_STRING_MAX_CHARS = 4_096

/** A string cut to LOG_STRING_MAX_CHARS, saying how much was left out; in an array or object, and in those one level inside it, alike. */
function clip (value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.length <= LOG_STRING_MAX_CHARS ? value : `${value.slice(0, LOG_STRING_MAX_CHARS)}... (${value.length - LOG_STRING_MAX_CHARS} more characters)`
  if (depth > 1 || typeof value !== 'object' || value === null || value instanceof Error) return value
  if (Array.isArray(value)) return value.map(v => clip(v, depth + 1))
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clip(v, depth + 1)]))
}

const short = (id: string): string => id.slice(0, 12)

/** Turns "no bootstrap peer answered" into a warning at the 1st, 2nd, 4th, 8th... attempt: a node left alone keeps saying so, without flooding. */
export function bootstrapWarner (log: OperatorLog): (f: { attempt: number, addrs: string[], reasons: string[] }) => void {
  return f => {
    if ((f.attempt & (f.attempt - 1)) !== 0) return
    log.warn({ event: 'bootstrap-unreachable', attempt: f.attempt, addrs: f.addrs, reasons: f.reasons }, `no bootstrap peer answers yet (attempt ${f.attempt}): ${f.addrs.join(', ')}${f.reasons[0] === undefined || f.reasons[0] === '' ? '' : ` (${f.reasons[0]})`}`)
  }
}

/**
 * Logs what happens on a running node: peers joining and leaving the mesh (its presence view, read
 * every presence interval), tasks dead-lettered, leases lost, and failed attempts with their error
 * (a model's error among them). Returns the function that stops it.
 */
export function watchNode (log: OperatorLog, node: AgentNode): () => void {
  const tasks = node.tasks
  if (tasks === undefined) return () => {}
  const me = node.peerId.toString()
  let known = new Map<string, string[]>()
  const look = (): void => {
    const now = new Map(tasks.presence.live().filter(p => p.peerId !== me).map(p => [p.peerId, p.capabilities.map(c => c.name)]))
    for (const [peer, caps] of now) if (!known.has(peer)) log.info({ event: 'peer-joined', peer, capabilities: caps }, `peer joined: ${peer} (${caps.length === 0 ? 'no capabilities' : caps.join(', ')}); ${now.size} live`)
    for (const peer of known.keys()) if (!now.has(peer)) log.info({ event: 'peer-left', peer }, `peer left: ${peer}; ${now.size} live`)
    known = now
  }
  const timer = setInterval(look, tasks.presence.intervalMs)
  timer.unref()
  const onDead = (evt: CustomEvent<DeadEvent>): void => {
    const d = evt.detail
    log.warn({ event: 'task-dead', task: d.id, capability: d.capability, reason: d.reason }, `task ${short(d.id)} (${d.capability}) dead-lettered: ${d.reason}`)
  }
  const onLost = (evt: CustomEvent<LeaseLostEvent>): void => {
    const d = evt.detail
    log.warn({ event: 'lease-lost', task: d.id, capability: d.capability, reason: d.reason }, `lease lost on task ${short(d.id)} (${d.capability}): ${d.reason}`)
  }
  const onRan = (evt: CustomEvent<RanEvent>): void => {
    const d = evt.detail
    if (d.outcome === 'duplicate') {
      log.warn({ event: 'duplicate-execution', task: d.id, capability: d.capability, error: d.error }, `result of task ${short(d.id)} (${d.capability}) refused, another claim holds the task (this node's lease lapsed while it ran: paused, or cut off): ${d.error ?? 'stale term'}`)
      return
    }
    if (d.outcome !== 'failed') return
    log.warn({ event: 'attempt-failed', task: d.id, capability: d.capability, error: d.error }, `attempt on task ${short(d.id)} (${d.capability}) failed: ${d.error ?? 'unknown error'}`)
  }
  tasks.events.addEventListener('dead', onDead)
  tasks.events.addEventListener('lease-lost', onLost)
  tasks.events.addEventListener('ran', onRan)
  return () => {
    clearInterval(timer)
    tasks.events.removeEventListener('dead', onDead)
    tasks.events.removeEventListener('lease-lost', onLost)
    tasks.events.removeEventListener('ran', onRan)
  }
}
