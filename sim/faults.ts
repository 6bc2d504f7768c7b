import type { AgentNode } from '../node/create-node.js'
import type { ConnectionGater, PeerId } from '@libp2p/interface'

/**
 * Network partitions by composition: each node is built with this controller's gater, which
 * refuses connections between peers in different groups while a split is on. No branch in node/
 * or protocols/ knows about it.
 */
export class PartitionController {
  private readonly groupOf = new Map<string, number>()
  private splitOn = false

  /**
   * The gater for one node, which it asks at every connection. `self` names the node it guards
   * (a node's peer id exists only once the node does, hence a function).
   */
  gater (self: () => string | undefined): ConnectionGater {
    const refuse = (peer: PeerId): boolean => {
      const me = self()
      return me !== undefined && this.separated(me, peer.toString())
    }
    return {
      denyDialPeer: refuse,
      denyInboundEncryptedConnection: refuse,
      denyOutboundEncryptedConnection: refuse
    }
  }

  separated (a: string, b: string): boolean {
    if (!this.splitOn) return false
    const ga = this.groupOf.get(a)
    const gb = this.groupOf.get(b)
    return ga !== undefined && gb !== undefined && ga !== gb
  }

  /** Splits the nodes into groups and closes every connection that crosses a boundary. */
  async split (groups: AgentNode[][]): Promise<void> {
    this.groupOf.clear()
    groups.forEach((group, i) => { for (const node of group) this.groupOf.set(node.peerId.toString(), i) })
    this.splitOn = true
    await Promise.all(groups.flat().map(async node => {
      for (const conn of node.libp2p.getConnections()) {
        if (this.separated(node.peerId.toString(), conn.remotePeer.toString())) await conn.close().catch(() => conn.abort(new Error('partitioned')))
      }
    }))
  }

  heal (): void {
    this.splitOn = false
  }
}
