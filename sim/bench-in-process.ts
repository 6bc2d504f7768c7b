import { echoAgent } from '../node/agents/basic.js'
import { createTestnet } from './testnet.js'
import type { AddRow } from './bench-daemons.js'

/**
 * A mesh in one process over TCP, tasks given straight to the task layer (no HTTP), in a closed
 * loop: the CPU a task costs with no other process to be switched out for, so a CPU profile of this
 * process (`node --cpu-prof dist/sim/bench.js in-process`) shows where the time goes, where one of
 * several daemons sharing two cores shows where they were preempted.
 */
export async function benchInProcess (add: AddRow, nodes = [1, 3], concurrency = 64, runMs = 10_000, warmupTasks = 1_500): Promise<void> {
  for (const n of nodes) {
    const net = await createTestnet(n, { transport: 'tcp', tasks: { agents: [echoAgent] } })
    try {
      await net.ready()
      let done = 0
      let failed = 0
      let next = 0
      const one = async (): Promise<void> => {
        const service = net.nodes[next++ % n]?.tasks?.service
        if (service === undefined) throw new Error('a testnet node without tasks')
        const { id } = await service.submit({ capability: 'echo', input: { n: next } })
        const view = await service.waitFor(id, 30_000)
        if (view.record.final?.state === 'completed') done++
        else failed++
      }
      const loop = async (until: () => boolean): Promise<void> => {
        await Promise.all(Array.from({ length: concurrency }, async () => { while (until()) await one() }))
      }
      await loop(() => done + failed < warmupTasks)
      const cpu0 = process.cpuUsage()
      const done0 = done
      const t0 = Date.now()
      await loop(() => Date.now() - t0 < runMs)
      const cpu = process.cpuUsage(cpu0)
      const tasks = Math.max(1, done - done0)
      const seconds = (Date.now() - t0) / 1000
      add(`${n === 1 ? '1 node' : `${n} nodes`} in one process over TCP, no HTTP, ${concurrency} in flight`, `${(tasks / seconds).toFixed(1)} tasks/s`,
        `CPU ${((cpu.user + cpu.system) / 1000 / tasks).toFixed(2)} ms/task (the whole process, all threads; ${(cpu.user / 1000 / tasks).toFixed(2)} user), ${failed} not completed, after ${warmupTasks} tasks of warm-up`)
    } finally {
      await net.stop()
    }
  }
}
