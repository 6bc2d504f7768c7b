import { summaryLines } from './report.js'
import type { SimReport } from './report.js'

/* The report as one self-contained HTML file: inline SVG charts, no script, no network. */

const esc = (s: string): string => s.replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c] as string))
const W = 640
const H = 220
const PAD = 36

function axes (xLabel: string, yLabel: string, yMax: number): string {
  return `<line x1="${PAD}" y1="${H - PAD}" x2="${W - 10}" y2="${H - PAD}" stroke="#444"/>` +
    `<line x1="${PAD}" y1="10" x2="${PAD}" y2="${H - PAD}" stroke="#444"/>` +
    `<text x="${W / 2}" y="${H - 6}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>` +
    `<text x="4" y="14" font-size="11">${esc(yLabel)} (max ${yMax})</text>`
}

function completionChart (r: SimReport): string {
  const tMax = Math.max(1, r.timeline.at(-1)?.t ?? 1)
  const yMax = Math.max(1, r.completed)
  const x = (t: number): number => PAD + (t / tMax) * (W - PAD - 10)
  const y = (v: number): number => H - PAD - (v / yMax) * (H - PAD - 20)
  const line = r.timeline.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.completed).toFixed(1)}`).join(' ')
  const marks = r.faults.map(f => `<line class="fault" x1="${x(f.at)}" y1="20" x2="${x(f.at)}" y2="${H - PAD}" stroke="#c0392b" stroke-dasharray="4 3"/>` +
    `<text x="${x(f.at) + 3}" y="30" font-size="10" fill="#c0392b">${esc(f.kind)}</text>`).join('')
  return `<svg class="chart" id="completed" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="tasks completed over time">` +
    `${axes(`time (s), run of ${(tMax / 1000).toFixed(1)} s`, 'tasks completed', yMax)}<path d="${line}" fill="none" stroke="#2c7be5" stroke-width="2"/>${marks}</svg>`
}

function bars (id: string, label: string, xLabel: string, values: Array<{ label: string, value: number, muted?: boolean }>): string {
  const yMax = Math.max(1, ...values.map(v => v.value))
  const bw = (W - PAD - 10) / Math.max(1, values.length)
  const rects = values.map((v, i) => {
    const h = (v.value / yMax) * (H - PAD - 20)
    const bx = PAD + i * bw
    return `<rect x="${(bx + 1).toFixed(1)}" y="${(H - PAD - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${v.muted === true ? '#bbb' : '#2c7be5'}"><title>${esc(v.label)}: ${v.value}</title></rect>` +
      (values.length <= 30 ? `<text x="${(bx + bw / 2).toFixed(1)}" y="${H - PAD + 12}" font-size="9" text-anchor="middle">${esc(v.label)}</text>` : '')
  }).join('')
  return `<svg class="chart" id="${id}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(label)}">${axes(xLabel, label, yMax)}${rects}</svg>`
}

function latencyChart (r: SimReport): string {
  const max = Math.max(1, r.latencyMs.max)
  const n = 20
  const width = Math.ceil(max / n)
  const counts = Array.from({ length: n }, () => 0)
  for (const l of r.latencies) counts[Math.min(n - 1, Math.floor(l / width))]! += 1
  return bars('latency', 'tasks', `end-to-end latency (ms), buckets of ${width} ms`, counts.map((c, i) => ({ label: String(i * width), value: c })))
}

function meshChart (r: SimReport): string {
  const cx = W / 2
  const cy = H / 2 + 5
  const radius = H / 2 - 25
  const n = Math.max(1, r.mesh.nodes.length)
  const pos = (i: number): [number, number] => [cx + radius * Math.cos(2 * Math.PI * i / n), cy + radius * Math.sin(2 * Math.PI * i / n)]
  const edges = r.mesh.edges.map(([a, b]) => { const [x1, y1] = pos(a); const [x2, y2] = pos(b); return `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="#9ab" stroke-width="0.7"/>` }).join('')
  const nodes = r.mesh.nodes.map(node => {
    const [x, y] = pos(node.index)
    return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${n > 30 ? 4 : 9}" fill="${node.alive ? '#2c7be5' : '#bbb'}"><title>node ${node.index}${node.alive ? '' : ' (down)'}</title></circle>` +
      (n <= 30 ? `<text x="${x.toFixed(1)}" y="${(y + 3).toFixed(1)}" font-size="9" fill="#fff" text-anchor="middle">${node.index}</text>` : '')
  }).join('')
  return `<svg class="chart" id="mesh" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="the mesh at the end">${edges}${nodes}</svg>`
}

export function renderHtml (r: SimReport): string {
  const invariants = r.invariants.map(i => `<li class="${i.ok ? 'pass' : 'fail'}">${i.ok ? 'PASS' : 'FAIL'} ${esc(i.name)}${i.ok ? '' : `: ${esc(i.detail)}`}</li>`).join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentmesh simulation: ${esc(r.scenario)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:760px;color:#222}pre{background:#f6f8fa;padding:1em;overflow-x:auto}
.pass{color:#1e7e34}.fail{color:#c0392b;font-weight:bold}h2{margin-top:1.6em}svg{background:#fff;border:1px solid #eee}</style></head>
<body>
<h1>agentmesh simulation: ${esc(r.scenario)}</h1>
<p>${esc(r.description ?? '')}</p>
<ul class="invariants">${invariants}</ul>
<h2>Summary</h2>
<pre>${esc(summaryLines(r).join('\n'))}</pre>
<h2>Tasks completed over time</h2>
<p>Dashed red lines mark the faults.</p>
${completionChart(r)}
<h2>Latency, submit to result</h2>
${latencyChart(r)}
<h2>Work per node</h2>
<p>Grey: the node was down at the end.</p>
${bars('work', 'tasks completed', 'node', r.workPerNode.map(w => ({ label: String(w.index), value: w.completed, muted: !w.alive })))}
<h2>The mesh at the end</h2>
${meshChart(r)}
<p><small>${esc(r.note)}</small></p>
</body></html>
`
}
