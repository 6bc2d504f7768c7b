import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { dirname } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BIN } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'

/** The daemons a process started: their pids and data dirs, from /proc. */
function children (pid: number): Array<{ pid: number, data: string }> {
  const out: Array<{ pid: number, data: string }> = []
  for (const line of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
    const args = readFileSync(`/proc/${line}/cmdline`, 'utf8').split('\0')
    const data = args[args.indexOf('--data') + 1]
    if (data !== undefined && args.includes('node')) out.push({ pid: Number(line), data })
  }
  return out
}

function gone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    // a zombie waits for init to reap it: it runs nothing
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true
  } catch {
    return true
  }
}

/** `agentmesh sim ARGS` as a child process: its output so far, and its exit. */
function startSim (args: string[]): { sim: ChildProcess, output: () => string, exited: Promise<unknown[]> } {
  const sim = spawn(process.execPath, [BIN, 'sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  sim.stdout?.on('data', d => { out += String(d) })
  sim.stderr?.on('data', d => { out += String(d) })
  return { sim, output: () => out, exited: once(sim, 'close') }
}

describe('agentmesh sim interrupted (Ctrl-C)', () => {
  it('stops its daemons, a paused one too, removes their data dirs and exits 130', async () => {
    const { sim, output, exited } = startSim(['--scenario', 'pause', '--processes', '--nodes', '3', '--tasks', '200', '--rate', '10'])
    try {
      // the pause has frozen a daemon (SIGSTOP): left behind, it stayed frozen for ever
      await waitFor(() => /fault at [\d.]+ s: pause: node \d+ paused/.test(output()), { timeoutMs: 90_000, what: () => `the pause fault:\n${output()}` })
      const daemons = children(sim.pid as number)
      expect(daemons).toHaveLength(3)
      sim.kill('SIGINT')
      const [code] = await exited as [number | null]
      expect(code, output()).toBe(130)
      expect(output()).toMatch(/SIGINT: stopping the simulation's nodes/)
      await waitFor(() => daemons.every(d => gone(d.pid)), { timeoutMs: 20_000, what: 'every daemon gone' })
      expect(existsSync(dirname(daemons[0]!.data))).toBe(false)
    } finally {
      sim.kill('SIGKILL')
    }
  }, 150_000)

  it('stops the nodes of a start still under way too, and removes their data dirs', async () => {
    const { sim, output, exited } = startSim(['--scenario', 'steady', '--processes', '--nodes', '4', '--tasks', '20', '--rate', '10'])
    try {
      // the first daemon up, the others still to start
      const first = await waitFor(() => children(sim.pid as number)[0], { timeoutMs: 60_000, intervalMs: 20, what: () => `a first daemon:\n${output()}` })
      sim.kill('SIGINT')
      const [code] = await exited as [number | null]
      expect(code, output()).toBe(130)
      await waitFor(() => gone(first.pid), { timeoutMs: 20_000, what: 'the first daemon gone' })
      // the daemons started after it were in the same dir
      expect(existsSync(dirname(first.data))).toBe(false)
    } finally {
      sim.kill('SIGKILL')
    }
  }, 150_000)
})
