import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAgentNode } from '../node/create-node.js'
import { waitFor } from './wait.js'
import type { AgentNode, AgentNodeInit } from '../node/create-node.js'

export type TestnetTransport = 'memory' | 'tcp'

export interface TestnetInit extends Omit<AgentNodeInit, 'dataDir' | 'listen' | 'bootstrap'> {
  /** @default 'memory' */
  transport?: TestnetTransport
  /** parent of the nodes' data dirs; a fresh temp dir (removed on stop) when not given */
  baseDir?: string
  /**
   * 'star': every node bootstraps from node 0; 'chain': node i from node i-1 (the rest is found
   * through the DHT).
   * @default 'star'
   */
  topology?: 'star' | 'chain'
  /** per-node overrides, by index */
  perNode?: (index: number) => Partial<AgentNodeInit>
}

let testnetCounter = 0

/**
 * n real nodes joined by bootstrap, built with the daemon's own factory. Joins are sequential:
 * dozens of simultaneous Noise handshakes against one node time out on 2 cores.
 */
export class Testnet {
  readonly nodes: AgentNode[] = []
  readonly baseDir: string
  private readonly ownsBaseDir: boolean
  private readonly init: TestnetInit
  private readonly id = `${process.pid}-${++testnetCounter}`
  private created = 0

  private constructor (baseDir: string, ownsBaseDir: boolean, init: TestnetInit) {
    this.baseDir = baseDir
    this.ownsBaseDir = ownsBaseDir
    this.init = init
  }

  static async create (n: number, init: TestnetInit = {}): Promise<Testnet> {
    const baseDir = init.baseDir ?? await mkdtemp(join(tmpdir(), 'agentmesh-testnet-'))
    const net = new Testnet(baseDir, init.baseDir === undefined, init)
    try {
      for (let i = 0; i < n; i++) await net.addNode()
    } catch (err) {
      await net.stop()
      throw err
    }
    return net
  }

  /** Adds one node that bootstraps per the topology; returns it. */
  async addNode (overrides: Partial<AgentNodeInit> = {}): Promise<AgentNode> {
    return this.buildNode(this.created++, overrides)
  }

  /** Starts node `index` again from its data dir (the same peer), after it was stopped. */
  async restartNode (index: number, overrides: Partial<AgentNodeInit> = {}): Promise<AgentNode> {
    const old = this.nodes[index]
    if (old?.libp2p.status === 'started') throw new Error(`node ${index} is still running`)
    return this.buildNode(index, overrides)
  }

  private async buildNode (index: number, overrides: Partial<AgentNodeInit>): Promise<AgentNode> {
    const { transport = 'memory', topology = 'star', perNode, baseDir: _b, ...nodeInit } = this.init
    const live = this.nodes.filter((n, i) => n.libp2p.status === 'started' && i !== index)
    const via = topology === 'chain' ? live.at(-1) : live[0]
    const node = await createAgentNode({
      ...nodeInit,
      dataDir: join(this.baseDir, `node-${index}`),
      listen: [transport === 'memory' ? `/memory/agentmesh-${this.id}-${index}` : '/ip4/127.0.0.1/tcp/0'],
      bootstrap: via === undefined ? [] : [via.addrs()[0] as string],
      logPrefix: nodeInit.logPrefix ?? `n${index}`,
      ...perNode?.(index),
      ...overrides
    })
    this.nodes[index] = node
    return node
  }

  /** Waits until every started node is connected to every other started node (a generous deadline: a busy 2-core machine). */
  async waitForFullMesh (timeoutMs = 60_000): Promise<void> {
    await waitFor(() => {
      const live = this.nodes.filter(n => n.libp2p.status === 'started')
      return live.every(n => live.every(m => m === n || n.libp2p.getConnections(m.peerId).length > 0))
    }, { timeoutMs, what: 'every node to connect to every other' })
  }

  /** Waits until every started node's presence view lists every started node. */
  async waitForPresence (timeoutMs = 60_000): Promise<void> {
    await waitFor(() => {
      const live = this.nodes.filter(n => n.libp2p.status === 'started')
      const ids = live.map(n => n.peerId.toString())
      return live.every(n => {
        const seen = new Set(n.tasks?.presence.live().map(p => p.peerId))
        return ids.every(id => seen.has(id))
      })
    }, { timeoutMs, what: 'every node to see every other in presence' })
  }

  /**
   * Waits until every node sees every other in presence: the state tests start from. (A full
   * mesh of connections is not needed: requests dial the peers they need.)
   */
  async ready (timeoutMs = 60_000): Promise<void> {
    await this.waitForPresence(timeoutMs)
  }

  async stop (): Promise<void> {
    await Promise.allSettled(this.nodes.map(async n => n.stop()))
    if (this.ownsBaseDir) await rm(this.baseDir, { recursive: true, force: true })
  }
}

export async function createTestnet (n: number, init: TestnetInit = {}): Promise<Testnet> {
  return Testnet.create(n, init)
}
