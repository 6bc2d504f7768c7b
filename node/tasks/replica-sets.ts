import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PresenceService } from '../../protocols/presence/index.js'
import type { PeerId } from '@libp2p/interface'

/**
 * The replica set of a task: the R live peers closest to the task's key in Kademlia's XOR space
 * (the keys are SHA-256 of the peer id and of the task id, as kad-dht's), or every live peer when
 * there are fewer than R. Ranked locally over the presence view instead of by a DHT query per task:
 * a query costs ~60 ms here and the view already lists the live mesh.
 */
export class ReplicaSets {
  private readonly presence: PresenceService
  private readonly r: number
  private readonly kadIds = new Map<string, Buffer>()
  private readonly peerIds = new Map<string, PeerId>()

  constructor (presence: PresenceService, replicationFactor: number) {
    this.presence = presence
    this.r = replicationFactor
  }

  get replicationFactor (): number {
    return this.r
  }

  for (taskId: string): PeerId[] {
    const target = createHash('sha256').update(Buffer.from(taskId, 'hex')).digest()
    const ranked = this.presence.live().map(p => ({ id: p.peerId, d: xor(this.kadId(p.peerId), target) }))
    ranked.sort((a, b) => Buffer.compare(a.d, b.d))
    return ranked.slice(0, this.r).map(p => this.peerId(p.id))
  }

  private kadId (peerId: string): Buffer {
    let id = this.kadIds.get(peerId)
    if (id === undefined) {
      id = createHash('sha256').update(this.peerId(peerId).toMultihash().bytes).digest()
      this.kadIds.set(peerId, id)
    }
    return id
  }

  peerId (id: string): PeerId {
    let p = this.peerIds.get(id)
    if (p === undefined) {
      p = peerIdFromString(id)
      this.peerIds.set(id, p)
    }
    return p
  }
}

function xor (a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length)
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number)
  return out
}
