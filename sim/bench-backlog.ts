/* `npm run bench -- backlog`: how fast the survivors run a backlog whose submitter was killed. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDaemonProcess } from './daemon-process.js'
import { requestJson } from './http-client.js'
import { waitFor } from './wait.js'
import type { DaemonProcess } from './daemon-process.js'

type Add = (what: string, figure: string, note?: string) => void

const TASKS = 400
const TASK_MS = 100
const IN_FLIGHT = 32

/**
 * Three daemons (the sleep agent, 8 slots each, a 3 s lease). TASKS tasks of TASK_MS are submitted
 * one by one to the first, IN_FLIGHT at a time, faster than the mesh runs them; 300 ms after the
 * last, that daemon is killed with SIGKILL. Its leases lapse and the rest wait on their placements,
 * claimable: the figure is how long the two survivors (16 slots, at most 160 such tasks a second)
 * take to finish every task, from the kill.
 */
export async function benchBacklog (add: Add): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'agentmesh-bench-backlog-'))
  const config = join(dir, 'config.json')
  await writeFile(config, JSON.stringify({ agents: ['sleep'], tasks: { leaseMs: 3_000 } }))
  const daemons: DaemonProcess[] = []
  try {
    for (const name of ['a', 'b', 'c']) {
      const boot = daemons[0]?.addrs[0]
      daemons.push(await startDaemonProcess(['--data', join(dir, name), '--api', '127.0.0.1:0', '--config', config, ...(boot === undefined ? [] : ['--bootstrap', boot])], { timeoutMs: 60_000 }))
    }
    for (const d of daemons) await waitFor(async () => (await requestJson(`${d.api}/v1/peers`, { timeoutMs: 5_000 })).body.peers.length >= 2, { what: 'three daemons to see each other', timeoutMs: 30_000 })
    const [entry, observer] = [daemons[0]!, daemons[1]!]
    let submitted = 0
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (submitted < TASKS) {
        submitted++
        const r = await requestJson(`${entry.api}/v1/tasks`, { method: 'POST', body: JSON.stringify({ capability: 'sleep', input: { ms: TASK_MS } }), timeoutMs: 30_000 })
        if (r.status !== 202) throw new Error(`submit answered ${r.status}: ${JSON.stringify(r.body)}`)
      }
    }))
    await new Promise(resolve => setTimeout(resolve, 300))
    entry.proc.kill('SIGKILL')
    const killedAt = performance.now()
    await entry.exited
    const completed = async (): Promise<number> => (await requestJson(`${observer.api}/v1/tasks?state=completed&capability=sleep&limit=10000`, { timeoutMs: 10_000 })).body.tasks.length
    const atKill = await completed()
    await waitFor(async () => await completed() >= TASKS, { what: `all ${TASKS} tasks completed`, intervalMs: 250, timeoutMs: 120_000 })
    const seconds = (performance.now() - killedAt) / 1000
    add(`a backlog after kill -9 of its submitter, ${TASKS} tasks of ${TASK_MS} ms`, `${seconds.toFixed(1)} s`, `from the kill to all completed on 2 survivors (16 slots), ${TASKS - atKill} left at the kill; 3 s lease`)
  } finally {
    for (const d of daemons) d.proc.kill('SIGKILL')
    await Promise.all(daemons.map(async d => await d.exited))
    await rm(dir, { recursive: true, force: true })
  }
}
