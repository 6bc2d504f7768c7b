/* The one place that writes to the terminal: every other module logs through libp2p's logger. */

/**
 * Set by commands whose work is not their output (`agentmesh node`, `agentmesh sim`, whose reports
 * are files): they go on when whoever read their output has gone, where a listing whose reader
 * left (`agentmesh tasks | head`) has nothing left to do.
 */
export const outputOwner = { keepGoing: false }

export function line (text = ''): void {
  process.stdout.write(`${text}\n`)
}

export function json (value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

export function errorLine (text: string): void {
  process.stderr.write(`agentmesh: ${text}\n`)
}

/** Rows as aligned columns; plain tab-separated lines when stdout is not a terminal. */
export function table (headers: string[], rows: string[][]): void {
  if (process.stdout.isTTY !== true) {
    for (const row of [headers, ...rows]) line(row.join('\t'))
    return
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const fmt = (row: string[]): string => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  line(fmt(headers))
  for (const row of rows) line(fmt(row))
}

/** A task id as people read it: its first 12 hex digits (any unique prefix is taken back). */
export function shortId (id: string): string {
  return id.slice(0, 12)
}

/** A peer id as people read it: peer ids share their first characters (12D3KooW...), the end tells them apart. */
export function shortPeer (peer: string): string {
  return peer.slice(-8)
}

/** Whether output goes to a person (short ids, "12 s ago") or to a program (full ids, ISO times). */
export function forPeople (): boolean {
  return process.stdout.isTTY === true
}

/** A past moment as people say it: "just now", "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago (at: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at) / 1000))
  if (s < 2) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86_400)} d ago`
}
