import { BUILTIN_AGENTS } from '../node/agents/index.js'
import { stateOf } from '../protocols/task/index.js'
import { SIM_CAPABILITIES, simAgents } from './agents.js'
import { PartitionController } from './faults.js'
import { flood } from './flood.js'
import { Testnet } from './testnet.js'
import { lostForGood } from './cluster.js'
import type { Cluster, NodeFigures, TaskOutcome } from './cluster.js'
import type { Rng } from './rng.js'
import type { TaskSpec } from './workload.js'
import type { AgentNode, AgentNodeInit } from '../node/create-node.js'
import type { TaskLayerInit } from '../node/tasks/options.js'

export interface InProcessInit {
  transport: 'memory' | 'tcp'
  tasks: TaskLayerInit
  /** libp2p tuning for many nodes in one process (see simNodeTuning) */
  tuning?: Partial<AgentNodeInit>
  latencyMs?: number
  rng: Rng
  /** parent of the nodes' data dirs; kept after stop() so the stores can be read */
  baseDir: string
}

/** Many real nodes in this process, built by createTestnet; faults by composition. */
export class InProcessCluster implements Cluster {
  readonly kind = 'in-process' as const
  private net?: Testnet
  private readonly init: InProcessInit
  private readonly gate = new PartitionController()
  private loss = 0
  /** the last figures of nodes that were stopped, so their work still counts */
  private readonly stopped = new Map<number, NodeFigures>()
  /** peers removed for good (churn): never back, so a placement that lost a majority to them cannot move */
  private readonly removed = new Set<string>()

  constructor (init: InProcessInit) {
    this.init = init
  }

  private get nodes (): AgentNode[] {
    return this.net?.nodes ?? []
  }

  async start (n: number): Promise<void> {
    this.net = await Testnet.create(n, {
      ...this.init.tuning,
      transport: this.init.transport,
      baseDir: this.init.baseDir,
      // its pings dominate idle CPU with dozens of nodes in one process
      connectionMonitor: false,
      memoryLatencyMs: this.init.latencyMs,
      tasks: this.init.tasks,
      perNode: i => ({
        connectionGater: this.gate.gater(() => this.nodes[i]?.peerId.toString()),
        // the sim agents stamp each result with the executing peer (this node, once it exists)
        tasks: { ...this.init.tasks, agents: [...BUILTIN_AGENTS, ...simAgents(() => this.nodes[i]?.peerId.toString())] }
      })
    })
    for (const node of this.nodes) this.wrap(node)
    await this.net.ready(60_000 + n * 1_000)
  }

  /** Drops a fraction of this node's gossip while loss is on: composition, not a branch in node/. */
  private wrap (node: AgentNode): void {
    const pubsub = node.libp2p.services.pubsub
    const publish = pubsub.publish.bind(pubsub)
    pubsub.publish = async (topic: string, data?: Uint8Array) => {
      if (this.loss > 0 && this.init.rng.next() < this.loss) return { recipients: [] }
      return publish(topic, data)
    }
  }

  live (): number[] {
    return this.nodes.flatMap((n, i) => n.libp2p.status === 'started' ? [i] : [])
  }

  peerIdOf (index: number): string {
    return this.nodes[index]?.peerId.toString() ?? '?'
  }

  async submit (index: number, spec: TaskSpec): Promise<string> {
    const node = this.nodes[index]
    if (node?.tasks === undefined || node.libp2p.status !== 'started') throw new Error(`node ${index} is down`)
    return (await node.tasks.service.submit({ capability: spec.capability, input: spec.input })).id
  }

  async outcome (id: string, waitMs: number): Promise<TaskOutcome | undefined> {
    const live = this.live()
    const index = live[Math.floor(Math.random() * live.length)] as number
    const view = await this.nodes[index]?.tasks?.service.waitFor(id, waitMs).catch(() => undefined)
    if (view === undefined) return undefined
    return {
      state: stateOf(view.record),
      result: view.result?.value,
      node: index,
      claimId: view.record.final?.claimId,
      executor: view.record.final?.peer
    }
  }

  async blocked (): Promise<Set<string>> {
    const lists = await Promise.all(this.live().map(async i => {
      const tasks = this.nodes[i]?.tasks
      return (await tasks?.service.list({ state: 'blocked', limit: 10_000 }) ?? []).filter(r => tasks?.mover.blockedBySplitVotes(r) === true || lostForGood(r.placement.members, this.removed))
    }))
    return new Set(lists.flat().map(r => r.task.id))
  }

  async busyNode (): Promise<number | undefined> {
    return this.live().find(i => (this.nodes[i]?.tasks?.executor.running().length ?? 0) > 0)
  }

  async crash (index: number): Promise<void> {
    const node = this.nodes[index]
    if (node === undefined) return
    this.stopped.set(index, this.figuresOf(node, index))
    // as close to kill -9 as one process gets: the network goes first, so the node's agents,
    // aborted by the stop, cannot tell anyone; its leases must expire
    await node.libp2p.stop()
    await node.stop()
  }

  async restart (index: number): Promise<void> {
    if (this.stopped.size === 0 && this.net === undefined) return
    // perNode gives it its agents and gater again
    const node = await this.net?.restartNode(index)
    if (node !== undefined) this.wrap(node)
  }

  async pause (index: number, durationMs: number): Promise<void> {
    // one process cannot freeze one node: cut it off from every peer instead, then let it back
    const others = this.live().filter(i => i !== index)
    await this.gate.split([[this.nodes[index] as AgentNode], others.map(i => this.nodes[i] as AgentNode)])
    setTimeout(() => { this.gate.heal() }, durationMs).unref()
  }

  async partition (groups: number[][], durationMs: number): Promise<void> {
    await this.gate.split(groups.map(g => g.map(i => this.nodes[i]).filter((n): n is AgentNode => n !== undefined)))
    setTimeout(() => { this.gate.heal() }, durationMs).unref()
  }

  setLoss (fraction: number): void {
    this.loss = fraction
  }

  async addNode (): Promise<number> {
    const node = await (this.net as Testnet).addNode()
    this.wrap(node)
    return this.nodes.indexOf(node)
  }

  async removeNode (index: number): Promise<void> {
    const node = this.nodes[index]
    if (node !== undefined) this.removed.add(node.peerId.toString())
    await this.crash(index)
  }

  async flood (messages: number): Promise<number> {
    const target = this.nodes[this.live()[0] as number] as AgentNode
    return flood(target.addrs()[0] as string, target.mesh, SIM_CAPABILITIES.echo, messages, this.init.rng)
  }

  private figuresOf (node: AgentNode, index: number): NodeFigures {
    return { index, peerId: node.peerId.toString(), alive: node.libp2p.status === 'started', stats: node.tasks?.stats() }
  }

  async figures (): Promise<NodeFigures[]> {
    return this.nodes.map((node, i) => node.libp2p.status === 'started' ? this.figuresOf(node, i) : { ...(this.stopped.get(i) ?? this.figuresOf(node, i)), alive: false })
  }

  edges (): Array<[number, number]> {
    const index = new Map(this.nodes.map((n, i) => [n.peerId.toString(), i]))
    const out: Array<[number, number]> = []
    for (const i of this.live()) {
      for (const peer of this.nodes[i]?.libp2p.getPeers() ?? []) {
        const j = index.get(peer.toString())
        if (j !== undefined && i < j) out.push([i, j])
      }
    }
    return out
  }

  dataDirs (): Array<{ node: number, dir: string }> {
    return this.nodes.map((n, node) => ({ node, dir: n.dataDir }))
  }

  async stop (): Promise<void> {
    this.gate.heal()
    await this.net?.stop()
  }
}
