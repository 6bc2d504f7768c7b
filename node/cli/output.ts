/* The one place that writes to the terminal: every other module logs through libp2p's logger. */

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
