import { summaryLines } from './report.js'
import type { FaultTrace, SimReport } from './report.js'

/* The report as one self-contained HTML file: inline SVG charts, no script, no network. */

const esc = (s: string): string => s.replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c] as string))
/** viewBox widths: half-page charts are narrower, so their text stays readable when scaled down */
const WIDE = 960
const NARROW = 640
const H = 260
/** left room for the y ticks, bottom room for the x ticks and the axis title */
const LEFT = 56
const BOTTOM = 42
const TOP = 16
const RIGHT = 22
const OUTCOME_COLOURS: Record<string, string> = { completed: '#2c7be5', failed: '#c0392b', expired: '#e67e22', running: '#8e44ad' }

/** About `count` round tick values from 0 to at least `max` (1, 2 or 5 times a power of ten apart). */
export function ticks (max: number, count = 5): number[] {
  const raw = Math.max(max, 1e-9) / count
  const power = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 5, 10].find(m => m * power >= raw) as number) * power
  const out: number[] = []
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)))
  if ((out.at(-1) as number) < max) out.push(Number(((out.length) * step).toPrecision(12)))
  return out
}

interface Frame {
  w: number
  x: (v: number) => number
  y: (v: number) => number
  xMax: number
  yMax: number
  svg: string
}

/** Axes with ticks, grid lines and titles that carry the units; the scales map data into the plot. */
function frame (xTitle: string, yTitle: string, xMaxRaw: number, yMaxRaw: number, xFormat: (v: number) => string = String, yTicks = true, W = NARROW): Frame {
  const xt = ticks(xMaxRaw)
  const yt = ticks(yMaxRaw)
  const xMax = xt.at(-1) as number
  const yMax = yt.at(-1) as number
  const x = (v: number): number => LEFT + (v / xMax) * (W - LEFT - RIGHT)
  const y = (v: number): number => H - BOTTOM - (v / yMax) * (H - BOTTOM - TOP)
  let svg = `<line x1="${LEFT}" y1="${H - BOTTOM}" x2="${W - RIGHT}" y2="${H - BOTTOM}" stroke="#444"/><line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${H - BOTTOM}" stroke="#444"/>`
  for (const v of xt) svg += `<line x1="${x(v).toFixed(1)}" y1="${H - BOTTOM}" x2="${x(v).toFixed(1)}" y2="${H - BOTTOM + 4}" stroke="#444"/><text class="tick" x="${x(v).toFixed(1)}" y="${H - BOTTOM + 15}" text-anchor="middle">${esc(xFormat(v))}</text>`
  if (yTicks) {
    for (const v of yt) svg += `<line x1="${LEFT - 4}" y1="${y(v).toFixed(1)}" x2="${W - RIGHT}" y2="${y(v).toFixed(1)}" stroke="${v === 0 ? '#444' : '#eee'}"/><text class="tick" x="${LEFT - 7}" y="${(y(v) + 3).toFixed(1)}" text-anchor="end">${v}</text>`
  }
  svg += `<text class="axis" x="${(LEFT + W - RIGHT) / 2}" y="${H - 6}" text-anchor="middle">${esc(xTitle)}</text>`
  svg += `<text class="axis" transform="translate(13 ${(TOP + H - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">${esc(yTitle)}</text>`
  return { w: W, x, y, xMax, yMax, svg }
}

const seconds = (ms: number): string => `${Number((ms / 1000).toPrecision(3))}`
const chart = (id: string, label: string, body: string, W = NARROW): string => `<svg class="chart" id="${id}" viewBox="0 0 ${W} ${H}" preserveAspectRatio="xMinYMin meet" role="img" aria-label="${esc(label)}">${body}</svg>`

/** A fault as a shaded span of the run (to the end when it never healed), with its kind written on it. */
function faultSpans (f: Frame, faults: FaultTrace[], runMs: number, top: number, bottom: number): string {
  // a skipped fault (no live node to apply it to) did nothing: not drawn as if a node were down
  return faults.filter(fault => fault.skipped !== true).map(fault => {
    const x1 = f.x(fault.at)
    const x2 = f.x(Math.min(f.xMax, fault.durationMs === undefined ? runMs : fault.at + fault.durationMs))
    return `<rect class="fault-span" x="${x1.toFixed(1)}" y="${top}" width="${Math.max(2, x2 - x1).toFixed(1)}" height="${bottom - top}" fill="#c0392b" fill-opacity="0.08"><title>${esc(`${fault.kind}: ${fault.detail}`)}</title></rect>`
  }).join('')
}

function completionChart (r: SimReport): string {
  const tMax = Math.max(1, r.timeline.at(-1)?.t ?? 1, r.durationMs)
  const f = frame('time since the first submit (s)', 'tasks completed', tMax, Math.max(1, r.completed), seconds)
  const line = r.timeline.map((p, i) => `${i === 0 ? 'M' : 'L'}${f.x(p.t).toFixed(1)},${f.y(p.completed).toFixed(1)}`).join(' ')
  const marks = r.faults.filter(fault => fault.skipped !== true).map(fault => `<line class="fault" x1="${f.x(fault.at)}" y1="${TOP}" x2="${f.x(fault.at)}" y2="${H - BOTTOM}" stroke="#c0392b" stroke-dasharray="4 3"/>` +
    `<text x="${f.x(fault.at) + 3}" y="${TOP + 12}" font-size="11" fill="#c0392b">${esc(fault.kind)}</text>`).join('')
  return chart('completed', 'tasks completed over time', `${faultSpans(f, r.faults, r.durationMs, TOP, H - BOTTOM)}${f.svg}<path d="${line}" fill="none" stroke="#2c7be5" stroke-width="2"/>${marks}`)
}

function latencyChart (r: SimReport): string {
  const n = 20
  const f0 = ticks(Math.max(1, r.latencyMs.max), n)
  const width = (f0[1] as number) - (f0[0] as number)
  const buckets = Math.max(1, Math.ceil(Math.max(1, r.latencyMs.max) / width))
  const counts = Array.from({ length: buckets }, () => 0)
  for (const l of r.latencies) counts[Math.min(buckets - 1, Math.floor(l / width))]! += 1
  const f = frame(`latency, submit to result (ms; bars ${width} ms wide)`, 'tasks', buckets * width, Math.max(1, ...counts))
  const rects = counts.map((c, i) => {
    const x1 = f.x(i * width)
    return `<rect x="${(x1 + 1).toFixed(1)}" y="${f.y(c).toFixed(1)}" width="${Math.max(1, f.x((i + 1) * width) - x1 - 2).toFixed(1)}" height="${(H - BOTTOM - f.y(c)).toFixed(1)}" fill="#2c7be5"><title>${i * width}-${(i + 1) * width} ms: ${c}</title></rect>`
  }).join('')
  return chart('latency', 'latency histogram', `${f.svg}${rects}`)
}

/** Tasks and subtasks each node completed, stacked; a node down at the end is grey. */
function workChart (r: SimReport): string {
  const nodes = r.workPerNode
  const f = frame('node', 'executions completed', Math.max(1, nodes.length), Math.max(1, ...nodes.map(w => w.completed + w.subtasks)), () => '')
  const bw = (f.w - LEFT - RIGHT) / Math.max(1, nodes.length)
  const rects = nodes.map((w, i) => {
    const x = LEFT + i * bw + 2
    const own = `<rect x="${x.toFixed(1)}" y="${f.y(w.completed).toFixed(1)}" width="${Math.max(1, bw - 4).toFixed(1)}" height="${(H - BOTTOM - f.y(w.completed)).toFixed(1)}" fill="${w.alive ? '#2c7be5' : '#bbb'}"><title>node ${w.index}: ${w.completed} tasks</title></rect>`
    const sub = w.subtasks === 0 ? '' : `<rect class="subtasks" x="${x.toFixed(1)}" y="${f.y(w.completed + w.subtasks).toFixed(1)}" width="${Math.max(1, bw - 4).toFixed(1)}" height="${(f.y(w.completed) - f.y(w.completed + w.subtasks)).toFixed(1)}" fill="${w.alive ? '#7fb3f0' : '#ddd'}"><title>node ${w.index}: ${w.subtasks} subtasks</title></rect>`
    const label = nodes.length <= 40 ? `<text class="tick" x="${(LEFT + i * bw + bw / 2).toFixed(1)}" y="${H - BOTTOM + 15}" text-anchor="middle">${w.index}</text>` : ''
    return own + sub + label
  }).join('')
  return chart('work', 'work per node', `${f.svg}${rects}`)
}

/** One row per node, a bar per execution from claim to end, coloured by how it ended; faults shaded. */
function timelineChart (r: SimReport): string {
  const rows = Math.max(1, r.workPerNode.length)
  const f = frame('time since the first submit (s)', 'node', Math.max(1, r.durationMs), rows, seconds, false, WIDE)
  const rowH = (H - BOTTOM - TOP) / rows
  const rowY = (node: number): number => TOP + node * rowH
  let body = faultSpans(f, r.faults, r.durationMs, TOP, H - BOTTOM) + f.svg
  for (const w of r.workPerNode) {
    body += `<text class="tick" x="${LEFT - 7}" y="${(rowY(w.index) + rowH / 2 + 3).toFixed(1)}" text-anchor="end">${w.index}</text>`
    if (w.index > 0) body += `<line x1="${LEFT}" y1="${rowY(w.index).toFixed(1)}" x2="${WIDE - RIGHT}" y2="${rowY(w.index).toFixed(1)}" stroke="#f0f0f0"/>`
  }
  // crashed and paused nodes: their own row is shaded darker
  for (const fault of r.faults) {
    if (fault.node === undefined) continue
    const x1 = f.x(fault.at)
    const x2 = f.x(Math.min(f.xMax, fault.durationMs === undefined ? r.durationMs : fault.at + fault.durationMs))
    body += `<rect class="fault-node" x="${x1.toFixed(1)}" y="${rowY(fault.node).toFixed(1)}" width="${Math.max(2, x2 - x1).toFixed(1)}" height="${rowH.toFixed(1)}" fill="#c0392b" fill-opacity="0.25"><title>${esc(`node ${fault.node}: ${fault.kind}`)}</title></rect>`
  }
  const barH = Math.max(2, Math.min(12, rowH * 0.6))
  for (const e of r.executions) {
    const x1 = f.x(e.start)
    const width = Math.max(1, f.x(e.end) - x1)
    body += `<rect class="execution" x="${x1.toFixed(1)}" y="${(rowY(e.node) + (rowH - barH) / 2).toFixed(1)}" width="${width.toFixed(1)}" height="${barH.toFixed(1)}" fill="${OUTCOME_COLOURS[e.outcome] ?? '#888'}" fill-opacity="${e.subtask ? 0.5 : 0.85}"><title>${esc(`${e.subtask ? 'subtask' : 'task'} ${e.outcome}, ${seconds(e.start)}-${seconds(e.end)} s`)}</title></rect>`
  }
  return chart('timeline', 'executions per node over time', body, WIDE)
}

function meshChart (r: SimReport): string {
  const cx = NARROW / 2
  const cy = H / 2
  const radius = H / 2 - 22
  const n = Math.max(1, r.mesh.nodes.length)
  const pos = (i: number): [number, number] => [cx + radius * Math.cos(2 * Math.PI * i / n), cy + radius * Math.sin(2 * Math.PI * i / n)]
  const edges = r.mesh.edges.map(([a, b]) => { const [x1, y1] = pos(a); const [x2, y2] = pos(b); return `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="#9ab" stroke-width="0.7"/>` }).join('')
  const nodes = r.mesh.nodes.map(node => {
    const [x, y] = pos(node.index)
    return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${n > 30 ? 4 : 10}" fill="${node.alive ? '#2c7be5' : '#bbb'}"><title>node ${node.index}${node.alive ? '' : ' (down)'}</title></circle>` +
      (n <= 30 ? `<text x="${x.toFixed(1)}" y="${(y + 4).toFixed(1)}" font-size="11" fill="#fff" text-anchor="middle">${node.index}</text>` : '')
  }).join('')
  return chart('mesh', 'the mesh at the end', `${edges}${nodes}`)
}

export function renderHtml (r: SimReport): string {
  const invariants = r.invariants.map(i => `<li class="${i.ok ? 'pass' : 'fail'}">${i.ok ? 'PASS' : 'FAIL'} ${esc(i.name)}${i.ok ? '' : `: ${esc(i.detail)}`}</li>`).join('')
  const legend = Object.entries(OUTCOME_COLOURS).map(([k, c]) => `<span class="key"><svg width="12" height="12"><rect width="12" height="12" fill="${c}"/></svg> ${k}</span>`).join(' ')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>agentmesh simulation: ${esc(r.scenario)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em 2em;color:#222}pre{background:#f6f8fa;padding:1em;overflow-x:auto}
.pass{color:#1e7e34}.fail{color:#c0392b;font-weight:bold}h2{margin:1.2em 0 .3em;font-size:1.1em}p{margin:.3em 0}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid #eee}svg .tick{font-size:11px;fill:#555}svg .axis{font-size:12px;fill:#222}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1em 2em}.wide{grid-column:1/-1}.key{margin-right:1em;white-space:nowrap}</style></head>
<body>
<h1>agentmesh simulation: ${esc(r.scenario)}</h1>
<p>${esc(r.description ?? '')}</p>
<ul class="invariants">${invariants}</ul>
<div class="grid">
<section><h2>Summary</h2>
<pre>${esc(summaryLines(r).join('\n'))}</pre></section>
<section><h2>Tasks completed over time</h2>
<p>Dashed red lines mark when each fault began; the shading, how long it lasted.</p>
${completionChart(r)}</section>
<section class="wide"><h2>Executions per node</h2>
<p>Each bar is one execution, from its claim to its end. ${legend} Faded: subtasks. Red shading: a fault; darker on the node it hit.${r.executionsLeftOut > 0 ? ` ${r.executionsLeftOut} more executions are not drawn.` : ''}</p>
${timelineChart(r)}</section>
<section><h2>Latency, submit to result</h2>
${latencyChart(r)}</section>
<section><h2>Work per node</h2>
<p>Dark: tasks of the workload; light: subtasks (a planner's children). Grey: the node was down at the end.</p>
${workChart(r)}</section>
<section><h2>The mesh at the end</h2>
${meshChart(r)}</section>
</div>
<p><small>${esc(r.note)}</small></p>
</body></html>
`
}
