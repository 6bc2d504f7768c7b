import { existsSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoAgent, failAgent, sleepAgent } from '../../node/agents/basic.js'
import { ApiServer } from '../../node/api/server.js'
import { PACKAGE_ROOT } from '../../node/package-root.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import type { Browser, Page } from 'playwright-core'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'

const CHROMIUM = '/usr/bin/chromium'
// the README's picture is refreshed on demand (AGENTMESH_SCREENSHOT=docs/dashboard.png npx vitest run test/daemon/ui.test.ts):
// a plain test run writes to the temp dir and leaves the checkout as it was
const SCREENSHOT = process.env.AGENTMESH_SCREENSHOT === undefined ? join(tmpdir(), `agentmesh-dashboard-${process.pid}.png`) : join(PACKAGE_ROOT, process.env.AGENTMESH_SCREENSHOT)

/** The same skip as the simulator's HTML check: CI has chromium, elsewhere a missing one is tolerated. */
function noBrowser (): boolean {
  if (existsSync(CHROMIUM)) return false
  expect(process.env.CI, 'chromium is missing: apt-get install chromium').toBeUndefined()
  return true
}

/** Runs two echo subtasks, for the task page's tree. */
const pairAgent: Agent<unknown> = {
  name: 'pair',
  capabilities: [{ name: 'pair' }],
  run: async ctx => Promise.all([ctx.submit('echo', { left: ctx.input }), ctx.submit('echo', { right: ctx.input })])
}

describe('the dashboard at /ui, in headless Chromium', () => {
  let net: Testnet
  const apis: ApiServer[] = []
  let browser: Browser | undefined
  let page: Page
  let base = ''
  /** console errors and uncaught exceptions */
  const errors: string[] = []
  /** failed loads (4xx/5xx answers, network failures) and requests that leave the node */
  const badLoads: string[] = []

  // nodes 0 and 1 run the agents; the page is node 2's, a node that runs nothing, as a user's own would be
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) return
    net = await createTestnet(3, { perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 2_000, presenceIntervalMs: 1_000, claimLagLimitMs: 5_000, eventsPollMs: 200, agents: [[echoAgent, sleepAgent, failAgent, pairAgent], [echoAgent, sleepAgent], []][i] } }) })
    await net.ready()
    for (const node of net.nodes) apis.push(await ApiServer.listen(node, { port: 0 }))
    base = apis[2]!.url
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] })
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })
    page.on('pageerror', err => errors.push(err.message))
    page.on('request', req => { if (!req.url().startsWith(`${base}/`) && !req.url().startsWith('data:')) badLoads.push(`foreign ${req.url()}`) })
    page.on('response', res => { if (res.status() >= 400) badLoads.push(`${res.status()} ${res.url()}`) })
    // leaving a task's page aborts its event stream: that one is no failure
    page.on('requestfailed', req => { if (req.failure()?.errorText !== 'net::ERR_ABORTED') badLoads.push(`${req.failure()?.errorText} ${req.url()}`) })
  })
  afterAll(async () => {
    await browser?.close()
    await Promise.allSettled(apis.map(async a => a.close()))
    await net?.stop()
  })

  const call = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${base}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) })
    expect(res.status, `${method} ${path}`).toBeLessThan(300)
    return res.json()
  }
  const submit = async (body: unknown): Promise<string> => (await call('POST', '/v1/tasks', body)).id
  /** the dashboard, loaded once: a test run alone (-t) loads it itself */
  const onDashboard = async (): Promise<void> => { if (!page.url().startsWith(`${base}/ui`)) await page.goto(`${base}/ui`) }

  it('loads with no console error and shows the mesh: the peers in a table and in the picture', async () => {
    if (noBrowser()) return
    await page.goto(`${base}/ui`)
    await page.locator('#peers tbody tr[data-peer]').nth(2).waitFor({ timeout: 30_000 })
    expect(await page.locator('#peers tbody tr[data-peer]').count()).toBe(3)
    for (const node of net.nodes) expect(await page.locator(`#peers tr[data-peer="${node.peerId.toString()}"]`).count()).toBe(1)
    expect(await page.locator('#peers tr', { hasText: 'sleep' }).count()).toBe(2)
    // three peers on the circle, this node highlighted, a line to each peer it holds a connection to
    expect(await page.locator('svg.mesh circle').count()).toBe(3)
    expect(await page.locator('svg.mesh circle.self').count()).toBe(1)
    expect(await page.locator('svg.mesh line.link').count()).toBeGreaterThanOrEqual(1)
    expect(await page.locator('#node').textContent()).toContain(net.nodes[2]!.peerId.toString().slice(-8))
    await page.locator('#live.on').waitFor({ timeout: 10_000 })
    expect(errors).toEqual([])
    expect(badLoads).toEqual([])
  })

  let sleeper = ''
  it('shows a task submitted after the page loaded, and its completion, without a reload', async () => {
    if (noBrowser()) return
    await onDashboard()
    await page.evaluate(() => { (window as any).sameDocument = true })
    sleeper = await submit({ capability: 'sleep', input: { ms: 1_500 } })
    await page.locator(`#tasks tr[data-id="${sleeper}"]`).waitFor({ timeout: 15_000 })
    expect(await page.locator(`#tasks tr[data-id="${sleeper}"] a`).textContent()).toBe(sleeper.slice(0, 12))
    await page.locator(`#tasks tr[data-id="${sleeper}"][data-state="completed"]`).waitFor({ timeout: 30_000 })
    expect(await page.locator(`#tasks tr[data-id="${sleeper}"] .badge`).textContent()).toBe('completed')
    expect(await page.evaluate(() => (window as any).sameDocument)).toBe(true)
    // the filters live in the hash: a state the task is not in hides it
    await page.selectOption('#f-state', 'dead')
    await page.waitForFunction(() => location.hash === '#/?state=dead')
    await page.locator(`#tasks tr[data-id="${sleeper}"]`).waitFor({ state: 'detached', timeout: 10_000 })
    await page.selectOption('#f-state', '')
    await page.locator(`#tasks tr[data-id="${sleeper}"]`).waitFor({ timeout: 10_000 })
    expect(errors).toEqual([])
  })

  it('shows a task\'s attempts on a timeline, its events and its result', async () => {
    if (noBrowser()) return
    await onDashboard()
    await page.locator(`#tasks tr[data-id="${sleeper}"] a`).click()
    await page.waitForFunction(id => location.hash === `#/task/${id}`, sleeper)
    await page.locator('svg.timeline rect.bar.completed').waitFor({ timeout: 15_000 })
    await page.locator('#events li[data-event="completed"]').waitFor({ timeout: 15_000 })
    const events = await page.locator('#events li').evaluateAll(items => items.map(li => (li as HTMLElement).dataset.event))
    expect(events[0]).toBe('submitted')
    expect(events).toContain('claimed')
    expect(events.at(-1)).toBe('completed')
    await page.locator('#result pre').waitFor({ timeout: 10_000 })
    expect(JSON.parse(await page.locator('#result pre').textContent() ?? '')).toEqual({ slept: 1_500 })
    expect(await page.locator('.meta').textContent()).toContain('sleep')
    expect(errors).toEqual([])
  })

  it('shows a task\'s subtasks as a tree of links, and a subtask links back to its parent', async () => {
    if (noBrowser()) return
    await onDashboard()
    const id = await submit({ capability: 'pair', input: 'x' })
    expect((await call('GET', `/v1/tasks/${id}/result?wait=30000`)).state).toBe('completed')
    await page.evaluate(id => { location.hash = `#/task/${id}` }, id)
    await page.locator('#subtasks ul.tree > li').nth(1).waitFor({ timeout: 15_000 })
    const children = (await call('GET', `/v1/tasks?parent=${id}`)).tasks.map((t: { id: string }) => t.id)
    expect(children).toHaveLength(2)
    for (const child of children) expect(await page.locator(`#subtasks a[href="#/task/${child}"]`).count()).toBe(1)
    await page.locator(`#subtasks a[href="#/task/${children[0]}"]`).click()
    await page.locator(`.meta a[href="#/task/${id}"]`).waitFor({ timeout: 15_000 })
    expect(errors).toEqual([])
  })

  it('lists a dead task under dead letters, and its Redrive button runs it again', async () => {
    if (noBrowser()) return
    await onDashboard()
    const dead = await submit({ capability: 'fail', input: { times: 5, message: 'broken on purpose' }, maxAttempts: 1 })
    expect((await call('GET', `/v1/tasks/${dead}/result?wait=30000`)).state).toBe('dead')
    await page.click('a[data-nav="dlq"]')
    const row = page.locator(`#dlq tr[data-id="${dead}"]`)
    await row.waitFor({ timeout: 15_000 })
    expect(await row.textContent()).toContain('broken on purpose')
    await row.locator('button.redrive').click()
    await page.locator('#dlq-status', { hasText: 'redriven' }).waitFor({ timeout: 15_000 })
    await waitFor(async () => (await call('GET', `/v1/tasks/${dead}`)).generation === 1, { timeoutMs: 15_000, what: 'generation 1 after the redrive' })
    // it fails again (times: 5), and comes back to the list as generation 1
    await page.locator(`#dlq tr[data-id="${dead}"]`, { hasText: 'gen 1' }).waitFor({ timeout: 30_000 })
    expect(errors).toEqual([])
    expect(badLoads).toEqual([])
  })

  it('asks for the token when the API requires one, and sends it on every call and stream once given', async () => {
    if (noBrowser()) return
    const token = 'dashboard-test-token-0123456789'
    const guarded = await ApiServer.listen(net.nodes[2]!, { port: 0, token })
    const other = await browser!.newPage({ viewport: { width: 1280, height: 800 } })
    const pageErrors: string[] = []
    other.on('pageerror', err => pageErrors.push(err.message))
    try {
      await other.goto(`${guarded.url}/ui`)
      await other.locator('.note', { hasText: 'API token' }).first().waitFor({ timeout: 15_000 })
      expect(await other.locator('#token.wanted').count()).toBe(1)
      await other.fill('#token', token)
      await other.click('#token-form button')
      await other.locator('#peers tbody tr[data-peer]').nth(2).waitFor({ timeout: 15_000 })
      await other.locator('#live.on').waitFor({ timeout: 10_000 })
      expect(await other.locator('.note').count()).toBe(0)
      expect(pageErrors).toEqual([])
    } finally {
      await other.close()
      await guarded.close()
    }
  })

  it('shows tasks in several states on the overview, and takes the README\'s screenshot of it', async () => {
    if (noBrowser()) return
    await onDashboard()
    const ids = {
      completed: await submit({ capability: 'echo', input: { hello: 'mesh' } }),
      retried: await submit({ capability: 'fail', input: { times: 1, message: 'flaky on purpose' }, maxAttempts: 3 }),
      // long enough to still run after the other waits on a busy machine
      running: await submit({ capability: 'sleep', input: { ms: 300_000 } }),
      canceled: await submit({ capability: 'sleep', input: { ms: 60_000 } }),
      // no peer offers it: it waits
      pending: await submit({ capability: 'translate', input: { text: 'hallo', to: 'en' } })
    }
    await call('POST', `/v1/tasks/${ids.canceled}/cancel`)
    await page.click('a[data-nav="overview"]')
    const expected: Record<keyof typeof ids, string> = { completed: 'completed', retried: 'completed', running: 'running', canceled: 'canceled', pending: 'pending' }
    for (const [name, id] of Object.entries(ids)) {
      await page.locator(`#tasks tr[data-id="${id}"][data-state="${expected[name as keyof typeof ids]}"]`).waitFor({ timeout: 30_000 })
    }
    await page.locator('#peers tbody tr[data-peer]').nth(2).waitFor({ timeout: 10_000 })
    await mkdir(dirname(SCREENSHOT), { recursive: true })
    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    expect(existsSync(SCREENSHOT)).toBe(true)
    if (process.env.AGENTMESH_SCREENSHOT === undefined) await rm(SCREENSHOT, { force: true })
    expect(errors).toEqual([])
    expect(badLoads).toEqual([])
  })
})
