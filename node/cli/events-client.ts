import { ApiRequestError, authHeaders, refuseOtherServer } from './client.js'
import { NodeNotRunningError } from '../errors.js'
import { shortId, shortPeer } from './output.js'

export interface StreamEvent {
  id?: string
  event: string
  data: any
}

/**
 * Follows a server-sent event stream of the control API, calling `onEvent` for each event until the
 * stream ends (a task's stream ends after its outcome) or `signal` aborts.
 */
export async function followEvents (baseUrl: string, path: string, onEvent: (e: StreamEvent) => void, signal?: AbortSignal, lastEventId?: string): Promise<void> {
  // read before the request: a blank token variable is its own error, not a node that does not answer
  const headers = { ...authHeaders(), accept: 'text/event-stream', ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) }
  let res: Response
  try {
    res = await fetch(`${baseUrl}${path}`, { headers, signal })
  } catch (err: any) {
    if (signal?.aborted === true) return
    throw new NodeNotRunningError(`no node answers at ${baseUrl} (${String(err?.cause?.code ?? err?.message)}); is the daemon running?`)
  }
  refuseOtherServer(res, baseUrl, `GET ${path}`)
  if (!res.ok || res.body === null) {
    const text = await res.text()
    let body: any
    try { body = JSON.parse(text) } catch {}
    // with the answer, which --json prints as it does every other command's refusal
    throw new ApiRequestError(res.status, `GET ${path}: ${body?.error?.message ?? `HTTP ${res.status}`}`, undefined, body)
  }
  let buffer = ''
  // streaming decode: a character split across two chunks must not come out garbled
  const decoder = new TextDecoder()
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true })
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

/** Text a peer chose, made safe for a terminal: no escape sequences, no line breaks. */
export function clean (s: unknown): string {
  return String(s).replace(/[\n\r\t]+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

const short = (s: unknown): string => typeof s === 'string' ? shortId(s) : '-'
const peer = (s: unknown): string => typeof s === 'string' ? shortPeer(s) : '-'

/** One readable line for an event of a task's stream or of the mesh's. */
export function describeEvent (e: StreamEvent): string {
  const d = e.data ?? {}
  // the mesh's states are told as they happen; a task's events come from its record, which keeps no
  // time of a redrive: that line gets none, not the time it was read
  const at = typeof d.at === 'number' ? d.at : e.event === 'state' ? Date.now() : undefined
  const time = at === undefined ? ' '.repeat(12) : new Date(at).toISOString().slice(11, 23)
  switch (e.event) {
    case 'submitted': return `${time}  submitted   ${short(d.id)} ${clean(d.capability)}${d.parent === undefined ? '' : ` (subtask of ${short(d.parent)})`}`
    case 'claimed': return `${time}  claimed     attempt ${String(d.attempt)} by ${peer(d.peer)}`
    case 'attempt-failed': case 'attempt-expired': case 'attempt-released':
      return `${time}  ${e.event.slice(8).padEnd(11)} attempt ${String(d.attempt)}${d.error === undefined ? '' : `: ${clean(d.error)}`}`
    case 'attempt-suspended': return `${time}  suspended   attempt ${String(d.attempt)}${d.signal === undefined ? '' : `: waits for the signal ${clean(d.signal)}`}`
    case 'progress': return `${time}  progress    ${clean(typeof d.event === 'string' ? d.event : JSON.stringify(d.event))}`
    case 'completed': return `${time}  completed   by ${peer(d.executor)}`
    case 'redriven': return `${time}  redriven    dead, run again as generation ${String(d.generation)}`
    case 'dead': case 'canceled': return `${time}  ${e.event.padEnd(11)} ${clean(d.reason ?? '')}${d.lastError === undefined || String(d.reason ?? '').includes(String(d.lastError)) ? '' : ` (last error: ${clean(d.lastError)})`}`
    case 'state': return `${time}  ${clean(d.state).padEnd(11)} ${short(d.id)} ${clean(d.capability)}${d.error === undefined ? '' : `: ${clean(d.error)}`}`
    default: return `${time}  ${e.event}`
  }
}

/** The text of a streamed token, if a progress event carries one (the LLM agents send {token}). */
export function tokenOf (e: StreamEvent): string | undefined {
  const ev = e.data?.event
  if (e.event !== 'progress' || ev === null || typeof ev !== 'object') return undefined
  // line breaks are the model's; escape sequences are nobody's business on a terminal
  for (const key of ['token', 'delta', 'text']) if (typeof ev[key] === 'string') return (ev[key] as string).replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '')
  return undefined
}
