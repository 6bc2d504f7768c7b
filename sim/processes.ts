import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../node/package-root.js'
import { SIM_CAPABILITIES } from './agents.js'
import { UnsupportedFaultError, lostForGood } from './cluster.js'
import { startDaemonProcess } from './daemon-process.js'
import { flood } from './flood.js'
import type { Cluster, NodeFigures, TaskOutcome } from './cluster.js'
import type { DaemonProcess } from './daemon-process.js'
import type { Rng } from './rng.js'
import type { TaskSpec } from './workload.js'
import type { TaskLayerInit } from '../node/tasks/options.js'

export interface ProcessesInit {
  baseDir: string
  tasks: TaskLayerInit
  rng: Rng
}

interface Member {
  daemon: DaemonProcess
  alive: boolean
  paused: boolean
  stats?: any
  peers: string[]
}

/** The sim agents (sim/agents.ts) as the daemons load them: from the build, as they run. */
export const SIM_AGENTS_MODULE = join(PACKAGE_ROOT, 'dist', 'sim', 'agents.js')

async function json (url: string, init?: RequestInit): Promise<any> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) })
  return res.json()
}

/** Real `agentmesh node` daemons as child processes on 127.0.0.1: crashes are SIGKILL, pauses SIGSTOP. */
export class ProcessCluster implements Cluster {
  readonly kind = 'processes' as const
  private readonly init: ProcessesInit
  private readonly members: Member[] = []
  /** peers removed for good (churn) */
  private readonly removed = new Set<string>()
  private config = ''
  private poller?: ReturnType<typeof setInterval>

  constructor (init: ProcessesInit) {
    this.init = init
  }

  async start (n: number): Promise<void> {
    if (!existsSync(SIM_AGENTS_MODULE)) throw new Error(`the daemons load the sim agents from ${SIM_AGENTS_MODULE}: run npm run build first`)
    this.config = join(this.init.baseDir, 'config.json')
    // the daemons run the built package (bin/agentmesh.js loads dist/), so they load the built sim agents
    await writeFile(this.config, JSON.stringify({ tasks: this.init.tasks, agentsModule: SIM_AGENTS_MODULE }))
    for (let i = 0; i < n; i++) await this.spawn(i)
    // counters of a node that is then killed are kept from the last poll
    this.poller = setInterval(() => { void this.poll() }, 1_000)
    await this.poll()
  }

  private dataDir (index: number): string {
    return join(this.init.baseDir, `node-${index}`)
  }

  private async spawn (index: number): Promise<void> {
    const bootstrap = this.live().filter(i => i !== index).map(i => this.members[i]?.daemon.addrs[0]).find(a => a !== undefined)
    const args = ['--data', this.dataDir(index), '--api', '127.0.0.1:0', '--config', this.config, ...(bootstrap === undefined ? [] : ['--bootstrap', bootstrap])]
    const daemon = await startDaemonProcess(args, { timeoutMs: 60_000 })
    this.members[index] = { daemon, alive: true, paused: false, peers: [] }
  }

  private async poll (): Promise<void> {
    await Promise.all(this.members.map(async m => {
      if (!m.alive || m.paused) return
      try {
        m.stats = await json(`${m.daemon.api}/v1/metrics`)
        m.peers = (await json(`${m.daemon.api}/v1/peers`)).peers.map((p: { peerId: string }) => p.peerId)
      } catch {}
    }))
  }

  live (): number[] {
    return this.members.flatMap((m, i) => m.alive && !m.paused ? [i] : [])
  }

  peerIdOf (index: number): string {
    return this.members[index]?.daemon.peerId ?? '?'
  }

  private api (index: number): string {
    const m = this.members[index]
    if (m === undefined || !m.alive) throw new Error(`node ${index} is down`)
    return m.daemon.api
  }

  async submit (index: number, spec: TaskSpec): Promise<string> {
    const answer = await json(`${this.api(index)}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: spec.capability, input: spec.input }) })
    if (typeof answer.id !== 'string') throw new Error(answer.error?.message ?? 'submit failed')
    return answer.id
  }

  async outcome (id: string, waitMs: number): Promise<TaskOutcome | undefined> {
    const live = this.live()
    const node = live[Math.floor(Math.random() * live.length)] as number
    const api = this.api(node)
    try {
      const r = await json(`${api}/v1/tasks/${id}/result?wait=${waitMs}`)
      if (r.state === undefined) return undefined
      const t = await json(`${api}/v1/tasks/${id}`)
      // the API does not show the final's claim (an attempt marked completed may be one that lost
      // the vote), so the audit compares this read by its result, which is unique per execution
      return { state: r.state, result: r.result, node, executor: t.executor }
    } catch {
      return undefined
    }
  }

  async blocked (): Promise<Set<string>> {
    // the API lists blocked tasks without saying why (split votes are not told apart): only those a
    // majority of whose placement was removed for good count as blocked; any other as unfinished
    const node = this.members[this.live()[0] as number]
    if (node === undefined || this.removed.size === 0) return new Set()
    const listed = await json(`${node.daemon.api}/v1/tasks?state=blocked&limit=10000`).catch(() => ({ tasks: [] }))
    return new Set((listed.tasks as Array<{ id: string, placement: { members: string[] } }>).filter(t => lostForGood(t.placement.members, this.removed)).map(t => t.id))
  }

  async busyNode (): Promise<number | undefined> {
    await this.poll()
    return this.live().find(i => (this.members[i]?.stats?.executions?.running ?? 0) > 0)
  }

  async crash (index: number): Promise<void> {
    const m = this.members[index]
    if (m === undefined || !m.alive) return
    m.daemon.proc.kill('SIGCONT')
    m.daemon.proc.kill('SIGKILL')
    m.alive = false
    await m.daemon.exited
  }

  async restart (index: number): Promise<void> {
    await this.spawn(index)
  }

  async pause (index: number, durationMs: number): Promise<void> {
    const m = this.members[index]
    if (m === undefined || !m.alive) return
    m.daemon.proc.kill('SIGSTOP')
    m.paused = true
    setTimeout(() => {
      m.daemon.proc.kill('SIGCONT')
      m.paused = false
    }, durationMs).unref()
  }

  async partition (): Promise<void> {
    throw new UnsupportedFaultError('partition needs the nodes in one process (no --processes): it is a connection gater')
  }

  setLoss (): void {
    throw new UnsupportedFaultError('loss needs the nodes in one process (no --processes): it wraps gossip publishing')
  }

  async addNode (): Promise<number> {
    const index = this.members.length
    await this.spawn(index)
    return index
  }

  async removeNode (index: number): Promise<void> {
    const m = this.members[index]
    if (m === undefined || !m.alive) return
    this.removed.add(m.daemon.peerId)
    m.daemon.proc.kill('SIGTERM')
    m.alive = false
    await m.daemon.exited
  }

  async flood (messages: number): Promise<number> {
    const target = this.members[this.live()[0] as number] as Member
    return flood(target.daemon.addrs[0] as string, 'default', SIM_CAPABILITIES.echo, messages, this.init.rng)
  }

  async figures (): Promise<NodeFigures[]> {
    await this.poll()
    return this.members.map((m, index) => ({ index, peerId: m.daemon.peerId, alive: m.alive, stats: m.stats }))
  }

  edges (): Array<[number, number]> {
    const index = new Map(this.members.map((m, i) => [m.daemon.peerId, i]))
    const out: Array<[number, number]> = []
    for (const i of this.live()) {
      for (const peer of this.members[i]?.peers ?? []) {
        const j = index.get(peer)
        if (j !== undefined && i < j) out.push([i, j])
      }
    }
    return out
  }

  dataDirs (): Array<{ node: number, dir: string }> {
    return this.members.map((_, node) => ({ node, dir: this.dataDir(node) }))
  }

  async stop (): Promise<void> {
    clearInterval(this.poller)
    await Promise.all(this.members.map(async m => {
      if (!m.alive) return
      m.daemon.proc.kill('SIGCONT')
      m.daemon.proc.kill('SIGTERM')
      const timer = setTimeout(() => m.daemon.proc.kill('SIGKILL'), 10_000)
      await m.daemon.exited
      clearTimeout(timer)
    }))
  }
}
