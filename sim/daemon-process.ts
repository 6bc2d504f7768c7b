import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../node/package-root.js'
import type { NodeFile } from '../node/daemon/daemon.js'
import type { ChildProcess } from 'node:child_process'

export const BIN = join(PACKAGE_ROOT, 'bin', 'agentmesh.js')

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI to completion with the test's own (pinned) Node. */
export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export interface DaemonProcess {
  proc: ChildProcess
  /** what the daemon printed up to 'ready', parsed */
  peerId: string
  addrs: string[]
  api: string
  output: () => string
  /** resolves with the exit code */
  exited: Promise<number | null>
}

/** Daemons this process started that still run: killed when it exits (process.exit or the end of its work; not a kill of this process). */
const running = new Set<ReturnType<typeof spawn>>()

function killRunning (): void {
  // a paused (SIGSTOPped) daemon left behind stayed frozen for ever, holding its data dir
  for (const proc of running) {
    proc.kill('SIGCONT')
    proc.kill('SIGKILL')
  }
}

/** Starts `agentmesh node` and resolves once it prints "ready" (rejects if it exits first). */
export async function startDaemonProcess (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<DaemonProcess> {
  const proc = spawn(process.execPath, [BIN, 'node', ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  if (running.size === 0) process.once('exit', killRunning)
  running.add(proc)
  proc.once('exit', () => {
    running.delete(proc)
    if (running.size === 0) process.off('exit', killRunning)
  })
  let out = ''
  proc.stdout.on('data', d => { out += String(d) })
  proc.stderr.on('data', d => { out += String(d) })
  // 'close', not 'exit': by then stdout and stderr are drained, so output() has the last lines
  const exited = new Promise<number | null>(resolve => proc.once('close', (code, signal) => {
    if (signal !== null) out += `\n[killed by ${signal}]`
    resolve(code)
  }))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`daemon not ready in time:\n${out}`)) }, options.timeoutMs ?? 20_000)
    const check = (): void => {
      if (/^ready$/m.test(out)) { clearTimeout(timer); resolve() }
    }
    proc.stdout.on('data', check)
    void exited.then(code => { clearTimeout(timer); reject(new Error(`daemon exited (${code}) before ready:\n${out}`)) })
  })
  const field = (name: string): string[] => [...out.matchAll(new RegExp(`^${name}: (.+)$`, 'gm'))].map(m => m[1] as string)
  return { proc, peerId: field('peer id')[0] as string, addrs: field('listening'), api: field('api')[0] as string, output: () => out, exited }
}

export async function getJson<T = any> (url: string): Promise<T> {
  const res = await fetch(url)
  return await res.json() as T
}

export type { NodeFile }
