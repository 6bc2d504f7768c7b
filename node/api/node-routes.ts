import { VERSION } from '../version.js'
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
      handle: () => ({
        body: { ok: node.libp2p.status === 'started', peerId: node.peerId.toString(), version: VERSION, uptimeMs: Date.now() - node.startedAt }
      })
    },
    {
      method: 'GET',
      path: '/v1/peers',
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
      handle: async () => ({ body: { ...await node.info(), version: VERSION, dataDir: node.dataDir } })
    }
  ]
}

/** GET /v1/metrics: the task layer's counters (when it runs) and the API's own under `api`. */
export function metricsRoute (node: AgentNode, stats: ApiStats): Route {
  return {
    method: 'GET',
    path: '/v1/metrics',
    handle: () => ({ body: { ...(node.tasks?.stats() ?? {}), api: snapshotApiStats(stats) } })
  }
}
