import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Store } from './store/store.js'
import type { PrivateKey } from '@libp2p/interface'

const IDENTITY_KEY = 'identity'

/**
 * The node's Ed25519 key: made on first start, kept in the store, so a restarted node is the same
 * peer.
 */
export async function loadOrCreateIdentity (store: Store): Promise<PrivateKey> {
  const saved = await store.getBytes(IDENTITY_KEY)
  if (saved !== undefined) return privateKeyFromProtobuf(saved)
  const key = await generateKeyPair('Ed25519')
  await store.putBytes(IDENTITY_KEY, privateKeyToProtobuf(key))
  return key
}
