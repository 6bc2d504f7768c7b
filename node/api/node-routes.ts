import { VERSION } from '../version.js'
import { doorStats } from './door-list.js'
import { snapshotApiStats } from './stats.js'
import type { Route } from './http.js'
import type { ApiStats } from './stats.js'
import type { AgentNode } from '../create-node.js'

/** Health, peers and node: what every node answers from the first issue on. */
export function nodeRoutes (node: AgentNode): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/health',
      summary: 'liveness and identity',
      handle: () => {
        // a store that failed a write (a full disk) takes none until the node restarts: not healthy
        const failure = node.store.writeFailure
        return { body: { ok: node.libp2p.status === 'started' && failure === undefined, peerId: node.peerId.toString(), version: VERSION, uptimeMs: node.uptimeMs(), ...(failure === undefined ? {} : { problem: failure.message }) } }
      }
    },
    {
      method: 'GET',
      path: '/v1/peers',
      summary: 'connected peers',
      handle: () => {
        const byPeer = new Map<string, Set<string>>()
        for (const conn of node.libp2p.getConnections()) {
          const id = conn.remotePeer.toString()
          const addrs = byPeer.get(id) ?? new Set<string>()
          addrs.add(conn.remoteAddr.toString())
          byPeer.set(id, addrs)
        }
        const peers = [...byPeer].map(([peerId, addrs]) => ({ peerId, addrs: [...addrs] }))
        return { body: { peers } }
      }
    },
    {
      method: 'GET',
      path: '/v1/node',
      summary: 'this node: addresses, mesh, store',
      handle: async () => ({ body: { ...await node.info(), version: VERSION, dataDir: node.dataDir } })
    }
  ]
}

/** GET /v1/mesh: the live peers as this node's presence sees them, and which of them it is connected to. */
export function meshRoute (node: AgentNode): Route {
  return {
    method: 'GET',
    path: '/v1/mesh',
    summary: 'live peers: capabilities, free slots, version, and whether this node holds a connection to each',
    handle: () => {
      const connected = new Set(node.libp2p.getConnections().map(c => c.remotePeer.toString()))
      const peers = (node.tasks?.presence.live() ?? []).map(p => ({
        peerId: p.peerId,
        self: p.self,
        version: p.version,
        capabilities: p.capabilities.map(c => c.name),
        freeSlots: p.freeSlots,
        lastSeen: p.lastSeen,
        connected: p.self || connected.has(p.peerId)
      }))
      return { body: { self: node.peerId.toString(), mesh: node.mesh, peers } }
    }
  }
}

/** GET /v1/metrics: the task layer's counters (when it runs) and the API's own under `api`. */
export function metricsRoute (node: AgentNode, stats: ApiStats): Route {
  return {
    method: 'GET',
    path: '/v1/metrics',
    summary: 'counters of the task layer and the API',
    handle: () => ({ body: { ...(node.tasks?.stats() ?? {}), api: snapshotApiStats(stats), doors: doorStats() } })
  }
}
