/*
 * `npm run bench -- memory`: vector memory's figures. Recall@10 of the index against exact search
 * on 100,000 random vectors of 384 dimensions; search latency through the HTTP API of 5 real
 * daemons; and what losing one of them (kill -9) costs a search.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Collection } from '../node/memory/collection.js'
import { line } from '../node/cli/output.js'
import { startDaemonProcess } from './daemon-process.js'
import { percentile } from './report.js'
import { Rng } from './rng.js'
import type { AddRow } from './bench-daemons.js'
import type { DaemonProcess } from './daemon-process.js'

const DIMS = 384

function randomVectors (n: number, seed: number): Float32Array[] {
  const rng = new Rng(seed)
  return Array.from({ length: n }, () => Float32Array.from({ length: DIMS }, () => rng.next() * 2 - 1))
}

function cosine (a: Float32Array, b: Float32Array): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < DIMS; i++) { dot += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2 }
  return dot / Math.sqrt(na * nb)
}

/** recall@10 of one peer's search, exact and HNSW, against a brute-force scan in JS */
async function recall (add: AddRow, n: number, queries: number): Promise<void> {
  const vectors = randomVectors(n, 7)
  const qs = randomVectors(queries, 11)
  const truth = qs.map(q => new Set(vectors.map((v, i) => ({ i, s: cosine(q, v) })).sort((a, b) => b.s - a.s).slice(0, 10).map(x => `v${x.i}`)))
  for (const [what, hnswAbove] of [['exact scan (the default up to 250,000 a peer)', Number.MAX_SAFE_INTEGER], ['HNSW (M=32, ef 1,024; past 250,000 a peer)', 0]] as const) {
    const c = new Collection(DIMS, hnswAbove)
    const t0 = performance.now()
    vectors.forEach((v, i) => { c.set({ collection: 'bench', id: `v${i}`, version: 1, writer: 'bench' }, [...v]) })
    const buildS = (performance.now() - t0) / 1000
    let hits = 0
    const took: number[] = []
    qs.forEach((q, i) => {
      const t = performance.now()
      const found = c.search(q, 10)
      took.push(performance.now() - t)
      hits += found.filter(m => truth[i]!.has(m.entry.id)).length
    })
    took.sort((a, b) => a - b)
    add(`memory: recall@10, ${n.toLocaleString('en')} random vectors of ${DIMS} dims, ${what}`, `${(hits / (queries * 10) * 100).toFixed(1)}%`, `${queries} queries against a brute-force scan; loaded in ${buildS.toFixed(0)} s; one search p50/p99 ${percentile(took, 50).toFixed(1)}/${percentile(took, 99).toFixed(1)} ms`)
  }
}

async function post (url: string, body: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
  return { status: res.status, json: await res.json() }
}

async function searches (d: DaemonProcess, vectors: Float32Array[], n: number): Promise<{ ms: number[], complete: number }> {
  const ms: number[] = []
  let complete = 0
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    const r = await post(`${d.api}/v1/memory/bench/search`, { vector: [...vectors[i % vectors.length]!], k: 10 })
    ms.push(performance.now() - t)
    if (r.json.coverage?.complete === true) complete++
  }
  return { ms: ms.sort((a, b) => a - b), complete }
}

async function meshLatency (add: AddRow, records: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'agentmesh-bench-memory-'))
  const daemons: DaemonProcess[] = []
  try {
    const config = join(dir, 'config.json')
    await writeFile(config, JSON.stringify({ agents: ['echo'], tasks: { presenceIntervalMs: 1_000 } }))
    for (let i = 0; i < 5; i++) daemons.push(await startDaemonProcess(['--data', join(dir, `n${i}`), '--api', '127.0.0.1:0', '--config', config, ...(i === 0 ? [] : ['--bootstrap', daemons[0]!.addrs[0]!])], { timeoutMs: 60_000 }))
    await delay(4_000)
    const vectors = randomVectors(records, 3)
    const t0 = performance.now()
    for (let i = 0; i < records; i += 100) {
      const r = await post(`${daemons[i / 100 % 5]!.api}/v1/memory/bench`, { records: vectors.slice(i, i + 100).map((v, j) => ({ id: `v${i + j}`, vector: [...v] })) })
      if (r.status !== 201) throw new Error(`put answered ${r.status}: ${JSON.stringify(r.json).slice(0, 200)}`)
    }
    const putS = (performance.now() - t0) / 1000
    const before = await searches(daemons[1]!, vectors, 200)
    add('memory: search p50/p99, 5 daemons', `${Math.round(percentile(before.ms, 50))} / ${Math.round(percentile(before.ms, 99))} ms`, `${records.toLocaleString('en')} records of ${DIMS} dims (put in ${putS.toFixed(1)} s, 100 a request, each on a majority of 3), k=10 over HTTP, one at a time; ${before.complete} of 200 complete`)
    daemons[4]!.proc.kill('SIGKILL')
    const after = await searches(daemons[1]!, vectors, 200)
    add('memory: search after kill -9 of one daemon', `${Math.round(percentile(after.ms, 50))} / ${Math.round(percentile(after.ms, 99))} ms`, `${after.complete} of 200 complete (fewer than R members silent); the first searches pay for the dead peer's connection`)
  } finally {
    for (const d of daemons) d.proc.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  }
}

export async function benchMemory (add: AddRow): Promise<void> {
  line('  memory: building a 100,000-vector index and checking it against exact search (a few minutes)')
  await recall(add, 100_000, 100)
  await meshLatency(add, 5_000)
}
