import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { DataDirError } from './errors.js'
import type { Store } from './store/store.js'
import type { PrivateKey } from '@libp2p/interface'

const IDENTITY_KEY = 'identity'

/**
 * The node's Ed25519 key: made on first start, kept in the store, so a restarted node is the same
 * peer. A key that is there but unreadable stops the start: a new one would make this node another
 * peer, while the mesh still counts the old one in its placements.
 */
export async function loadOrCreateIdentity (store: Store, where = 'the store'): Promise<PrivateKey> {
  const unreadable = (why: string): DataDirError => new DataDirError(`the node key in ${where} is unreadable (${why}): restore the data dir from a backup, or start with a new data dir as a new peer`)
  let saved: Uint8Array | undefined
  try {
    saved = await store.getBytes(IDENTITY_KEY)
  } catch (err: any) {
    if (err?.name !== 'CorruptRecordError') throw err
    throw unreadable('not the form it was written in')
  }
  if (saved !== undefined) {
    try {
      return privateKeyFromProtobuf(saved)
    } catch (err: any) {
      throw unreadable(String(err?.message ?? err))
    }
  }
  // tasks and leases with no key: a new one would be another peer holding the old one's grants and
  // votes, in placements that name the old one (the key deleted or lost on its own)
  if (!await store.tasks.isEmpty() || !await store.leases.isEmpty()) {
    throw new DataDirError(`the node key is missing from ${where}, which holds tasks: restore the data dir from a backup, or start with a new data dir as a new peer`)
  }
  const key = await generateKeyPair('Ed25519')
  await store.putBytes(IDENTITY_KEY, privateKeyToProtobuf(key))
  return key
}
