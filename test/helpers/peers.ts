import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { statementBytes } from '../../protocols/task/index.js'
import type { Certificate, FinalValue } from '../../protocols/task/index.js'
import type { PrivateKey } from '@libp2p/interface'

/** A peer with a real Ed25519 key: signatures and certificate checks in tests are real. */
export interface Peer { id: string, key: PrivateKey }

export async function makePeer (): Promise<Peer> {
  const key = await generateKeyPair('Ed25519')
  return { id: peerIdFromPrivateKey(key).toString(), key }
}

export function signBytes (p: Peer, bytes: Uint8Array): string {
  const sig = p.key.sign(bytes)
  if (!(sig instanceof Uint8Array)) throw new TypeError('expected a synchronous Ed25519 signature')
  return Buffer.from(sig).toString('base64')
}

/** A certificate signed by exactly `signers`, valid or not. */
export function certBy (id: string, value: FinalValue, signers: Peer[], o: { generation?: number, epoch?: number, term?: number } = {}): Certificate {
  const generation = o.generation ?? 0
  const epoch = o.epoch ?? 0
  const term = o.term ?? 1
  return {
    id,
    generation,
    epoch,
    value,
    votes: signers.map(p => ({ peer: p.id, term, sig: signBytes(p, statementBytes({ id, generation, epoch, term, value })) })).sort((a, b) => a.peer < b.peer ? -1 : 1)
  }
}
