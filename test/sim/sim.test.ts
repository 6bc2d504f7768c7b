import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { renderHtml } from '../../sim/html.js'
import { Rng } from '../../sim/rng.js'
import { runSimulation } from '../../sim/runner.js'
import { loadScenario } from '../../sim/scenario.js'
import { makeWorkload } from '../../sim/workload.js'
import { runCli } from '../../sim/daemon-process.js'
import type { SimReport } from '../../sim/report.js'

const CHROMIUM = '/usr/bin/chromium'

describe('the simulator', () => {
  let crashReport: SimReport | undefined
  const dirs: string[] = []
  afterAll(async () => { await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true }))) })

  it('loads every bundled scenario, and names what is wrong with a bad one', async () => {
    for (const name of ['steady', 'crash', 'pause', 'partition', 'latency', 'churn', 'flood', 'demo']) {
      expect((await loadScenario(name)).name).toBe(name)
    }
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-scn-'))
    dirs.push(dir)
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ name: 'x', faults: [{ kind: 'crash', at: -1, node: 'everyone' }] }))
    await expect(loadScenario(join(dir, 'bad.json'))).rejects.toMatchObject({ name: 'InvalidScenarioError', message: expect.stringMatching(/faults\.0/) })
    await expect(loadScenario('no-such-scenario')).rejects.toHaveProperty('name', 'InvalidScenarioError')
  })

  it('makes the same workload from the same seed, and another from another', () => {
    const a = makeWorkload('mixed', 50, new Rng(7)).map(t => t.input)
    const b = makeWorkload('mixed', 50, new Rng(7)).map(t => t.input)
    const c = makeWorkload('mixed', 50, new Rng(8)).map(t => t.input)
    expect(a).toEqual(b)
    expect(a).not.toEqual(c)
  })

  it('runs the crash scenario: the killed node\'s work finishes elsewhere and every invariant holds', async () => {
    const scenario = await loadScenario('crash')
    crashReport = await runSimulation({ scenario, nodes: 5, tasks: 60, workload: 'sleep', rate: 20, seed: 3, transport: 'memory', processes: false })
    expect(crashReport.invariants.filter(i => !i.ok)).toEqual([])
    expect(crashReport).toMatchObject({ submitted: 60, acknowledged: 60, completed: 60, lost: 0, unfinished: 0 })
    expect(crashReport.faults.map(f => f.kind)).toEqual(['crash', 'crash'])
    expect(crashReport.faults[0]?.recoveryMs).toBeGreaterThan(0)
    expect(crashReport.workPerNode.filter(w => w.completed > 0).length).toBeGreaterThanOrEqual(3)
    expect(crashReport.latencyMs.p50).toBeGreaterThan(0)
  }, 120_000)

  it('writes an HTML report that renders its charts in headless Chromium with no console error', async () => {
    if (!existsSync(CHROMIUM)) {
      // CI installs Debian's chromium (.ci/run); elsewhere this check needs it too
      expect(process.env.CI, 'chromium is missing: apt-get install chromium').toBeUndefined()
      return
    }
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-html-'))
    dirs.push(dir)
    const file = join(dir, 'report.html')
    await writeFile(file, renderHtml(crashReport as SimReport))
    expect(await readFile(file, 'utf8')).not.toMatch(/https?:\/\/(?!www\.w3\.org)/)
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] })
    try {
      const page = await browser.newPage()
      const errors: string[] = []
      page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })
      page.on('pageerror', err => errors.push(err.message))
      const requests: string[] = []
      page.on('request', req => { if (!req.url().startsWith('file:')) requests.push(req.url()) })
      await page.goto(`file://${file}`)
      for (const id of ['completed', 'latency', 'work', 'mesh']) {
        const box = await page.locator(`svg#${id}`).boundingBox()
        expect(box?.width, id).toBeGreaterThan(100)
      }
      expect(await page.locator('svg#completed path').count()).toBe(1)
      expect(await page.locator('svg#completed line.fault').count()).toBe(2)
      expect(await page.locator('svg#mesh circle').count()).toBe(5)
      expect(errors).toEqual([])
      expect(requests).toEqual([])
    } finally {
      await browser.close()
    }
  }, 60_000)

  it('agentmesh sim prints the summary, writes --json and --report, and exits 0 when the invariants hold', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-simcli-'))
    dirs.push(dir)
    const r = await runCli(['sim', '--scenario', 'steady', '--nodes', '3', '--tasks', '30', '--rate', '30', '--seed', '5', '--json', join(dir, 'r.json'), '--report', join(dir, 'r.html')], { timeoutMs: 60_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/PASS {2}no task lost/)
    const json = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8'))
    expect(json).toMatchObject({ scenario: 'steady', seed: 5, nodes: 3, completed: 30, lost: 0 })
    expect(await readFile(join(dir, 'r.html'), 'utf8')).toMatch(/<svg/)
    const bad = await runCli(['sim', '--scenario', 'nope'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/no scenario "nope"/)
  }, 90_000)
})
