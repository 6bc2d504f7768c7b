import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startDaemonProcess } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { call } from '../helpers/api.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'

const HOUR = 3_600_000
const MINUTE = 60_000

/*
 * A daemon whose clock runs an hour behind the mesh's (Date.now shifted by a preload in that
 * process alone). Members judge a deadline by their own clocks: the deadlines it stamped by its
 * own had passed before its tasks reached them, and they went dead unclaimed, never run.
 */
describe('a daemon whose clock runs an hour behind', () => {
  const tmp = useTmpDirs()
  const running: DaemonProcess[] = []
  afterEach(() => { for (const d of running.splice(0)) d.proc.kill('SIGKILL') })

  it('stamps its tasks by the mesh clock: a 30-minute deadline runs, and reads 30 minutes from now everywhere', async () => {
    const dir = await tmp()
    const preload = join(dir, 'skew.cjs')
    await writeFile(preload, 'const realNow = Date.now; const skew = Number(process.env.AGENTMESH_TEST_SKEW_MS); Date.now = () => realNow() + skew\n')
    const start = async (name: string, bootstrap?: DaemonProcess, env?: NodeJS.ProcessEnv): Promise<DaemonProcess> => {
      const d = await startDaemonProcess(['--data', join(dir, name), '--api', '127.0.0.1:0', ...(bootstrap === undefined ? [] : ['--bootstrap', bootstrap.addrs[0] as string])], { env })
      running.push(d)
      return d
    }
    const a = await start('a')
    const b = await start('b', a)
    const behind = await start('behind', a, { NODE_OPTIONS: `--require ${preload}`, AGENTMESH_TEST_SKEW_MS: String(-HOUR) })
    // two peers that agree outvote its own clock: one alone would tie with it
    const livePeers = async (d: DaemonProcess): Promise<number> => Number(/^agentmesh_live_peers (\d+)$/m.exec(await (await fetch(`${d.api}/metrics`)).text())?.[1] ?? 0)
    await waitFor(async () => await livePeers(behind) >= 2, { what: "the skewed daemon to hear both others' presence", timeoutMs: 30_000 })
    const done = await call(behind.api, 'POST', '/v1/tasks?wait=20000', { capability: 'echo', input: 'on time', deadlineMs: 30 * MINUTE })
    expect(done).toMatchObject({ status: 200, json: { state: 'completed', result: 'on time' } })
    for (const d of [a, b]) {
      const { json } = await call(d.api, 'GET', `/v1/tasks/${String(done.json.id)}`)
      expect(json.deadline).toBeGreaterThan(Date.now() + 25 * MINUTE)
      expect(json.deadline).toBeLessThan(Date.now() + 35 * MINUTE)
    }
  }, 90_000)

  it('25 s behind (within clockSkewToleranceMs), stamps its task by the mesh clock all the same: a 20 s deadline runs, where it had passed for every member', async () => {
    const dir = await tmp()
    const preload = join(dir, 'skew.cjs')
    await writeFile(preload, 'const realNow = Date.now; const skew = Number(process.env.AGENTMESH_TEST_SKEW_MS); Date.now = () => realNow() + skew\n')
    const a = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0'])
    running.push(a)
    const b = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0', '--bootstrap', a.addrs[0] as string])
    running.push(b)
    const behind = await startDaemonProcess(['--data', join(dir, 'behind'), '--api', '127.0.0.1:0', '--bootstrap', a.addrs[0] as string], { env: { NODE_OPTIONS: `--require ${preload}`, AGENTMESH_TEST_SKEW_MS: '-25000' } })
    running.push(behind)
    const livePeers = async (d: DaemonProcess): Promise<number> => Number(/^agentmesh_live_peers (\d+)$/m.exec(await (await fetch(`${d.api}/metrics`)).text())?.[1] ?? 0)
    await waitFor(async () => await livePeers(behind) >= 2, { what: "the skewed daemon to hear both others' presence", timeoutMs: 30_000 })
    const done = await call(behind.api, 'POST', '/v1/tasks?wait=20000', { capability: 'echo', input: 'in time', deadlineMs: 20_000 })
    expect(done).toMatchObject({ status: 200, json: { state: 'completed', result: 'in time' } })
    const { json } = await call(a.api, 'GET', `/v1/tasks/${String(done.json.id)}`)
    expect(json.deadline).toBeGreaterThan(Date.now() + 10_000)
    // created by the mesh clock too: the deadline is still deadlineMs after the creation
    expect(json.createdAt).toBeGreaterThan(Date.now() - 10_000)
    expect(json.deadline - json.createdAt).toBe(20_000)
  }, 90_000)
})
