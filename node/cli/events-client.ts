import { authHeaders } from './client.js'
import { NodeNotRunningError } from '../errors.js'
import { ApiRequestError } from './client.js'

export interface StreamEvent {
  id?: string
  event: string
  data: any
}

/**
 * Follows a server-sent event stream of the control API, calling `onEvent` for each event until the
 * stream ends (a task's stream ends after its outcome) or `signal` aborts.
 */
export async function followEvents (baseUrl: string, path: string, onEvent: (e: StreamEvent) => void, signal?: AbortSignal): Promise<void> {
  let res: Response
  try {
    res = await fetch(`${baseUrl}${path}`, { headers: { ...authHeaders(), accept: 'text/event-stream' }, signal })
  } catch (err: any) {
    if (signal?.aborted === true) return
    throw new NodeNotRunningError(`no node answers at ${baseUrl} (${String(err?.cause?.code ?? err?.message)}); is the daemon running?`)
  }
  if (!res.ok || res.body === null) {
    const text = await res.text()
    let message = `HTTP ${res.status}`
    try { message = JSON.parse(text)?.error?.message ?? message } catch {}
    throw new ApiRequestError(res.status, `GET ${path}: ${message}`)
  }
  let buffer = ''
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += Buffer.from(chunk).toString('utf8')
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const e: Partial<StreamEvent> = {}
        for (const l of block.split('\n')) {
          if (l.startsWith(':')) continue
          const i = l.indexOf(':')
          const field = l.slice(0, i)
          const value = l.slice(i + 1).replace(/^ /, '')
          if (field === 'id') e.id = value
          else if (field === 'event') e.event = value
          else if (field === 'data') e.data = JSON.parse(value)
        }
        if (e.event !== undefined) onEvent(e as StreamEvent)
      }
    }
  } catch (err: any) {
    if (signal?.aborted !== true) throw err
  }
}

const short = (s: unknown): string => typeof s === 'string' ? s.slice(0, 12) : '-'
/** peer ids share their first characters (12D3KooW...): the end tells them apart */
const peer = (s: unknown): string => typeof s === 'string' ? s.slice(-8) : '-'

/** One readable line for an event of a task's stream or of the mesh's. */
export function describeEvent (e: StreamEvent): string {
  const d = e.data ?? {}
  const time = new Date(typeof d.at === 'number' ? d.at : Date.now()).toISOString().slice(11, 23)
  switch (e.event) {
    case 'submitted': return `${time}  submitted   ${short(d.id)} ${String(d.capability)}${d.parent === undefined ? '' : ` (subtask of ${short(d.parent)})`}`
    case 'claimed': return `${time}  claimed     attempt ${String(d.attempt)} by ${peer(d.peer)}`
    case 'attempt-failed': case 'attempt-expired': case 'attempt-released':
      return `${time}  ${e.event.slice(8).padEnd(11)} attempt ${String(d.attempt)}${d.error === undefined ? '' : `: ${String(d.error)}`}`
    case 'progress': return `${time}  progress    ${typeof d.event === 'string' ? d.event : JSON.stringify(d.event)}`
    case 'completed': return `${time}  completed   by ${peer(d.executor)}`
    case 'dead': case 'canceled': return `${time}  ${e.event.padEnd(11)} ${String(d.reason ?? '')}${d.lastError === undefined || String(d.reason ?? '').includes(String(d.lastError)) ? '' : ` (last error: ${String(d.lastError)})`}`
    case 'state': return `${time}  ${String(d.state).padEnd(11)} ${short(d.id)} ${String(d.capability)}${d.error === undefined ? '' : `: ${String(d.error)}`}`
    default: return `${time}  ${e.event}`
  }
}

/** The text of a streamed token, if a progress event carries one (the LLM agents send {token}). */
export function tokenOf (e: StreamEvent): string | undefined {
  const ev = e.data?.event
  if (e.event !== 'progress' || ev === null || typeof ev !== 'object') return undefined
  for (const key of ['token', 'delta', 'text']) if (typeof ev[key] === 'string') return ev[key]
  return undefined
}
