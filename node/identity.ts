import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { DataDirError } from './errors.js'
import { writeSyncedFile } from './store/synced-file.js'
import type { Store } from './store/store.js'
import type { PrivateKey } from '@libp2p/interface'

const IDENTITY_KEY = 'identity'

/**
 * The file beside LevelDB's own, in the store's directory, that names the peer the store is: a
 * store that lost everything (its only log deleted or lost) opens empty, and a node key made then
 * would make it another peer, while the mesh still counts the old one in its placements.
 */
export const PEER_MARK = 'PEER'

/**
 * The node's Ed25519 key: made on first start, kept in the store, so a restarted node is the same
 * peer. A key that is there but unreadable stops the start, and so does a missing key in a store
 * that held one (its tasks, or the peer mark, say so): a new one would make this node another peer.
 * `storePath` holds the peer mark; without it, no mark is read or written.
 */
export async function loadOrCreateIdentity (store: Store, storePath?: string): Promise<PrivateKey> {
  const where = storePath ?? 'the store'
  const unreadable = (why: string): DataDirError => new DataDirError(`the node key in ${where} is unreadable (${why}): restore the data dir from a backup, or start with a new data dir as a new peer`)
  const mark = storePath === undefined ? undefined : await readMark(join(storePath, PEER_MARK))
  const saved = await savedBytes(store, IDENTITY_KEY, () => unreadable('not the form it was written in'))
  if (saved !== undefined) {
    let key: PrivateKey
    try {
      key = privateKeyFromProtobuf(saved)
    } catch (err: any) {
      throw unreadable(String(err?.message ?? err))
    }
    const id = peerIdFromPrivateKey(key).toString()
    if (mark !== undefined && mark !== '' && mark !== id) throw new DataDirError(`the node key in ${where} is peer ${id}, but ${join(where, PEER_MARK)} says this store is peer ${JSON.stringify(mark.slice(0, 200))}: restore the data dir from a backup, or start with a new data dir as a new peer`)
    // a store from before the mark, or a first start cut off between the key and its mark
    if ((mark === undefined || mark === '') && storePath !== undefined) await writeMark(join(storePath, PEER_MARK), id)
    return key
  }
  // tasks and leases with no key: a new one would be another peer holding the old one's grants and
  // votes, in placements that name the old one (the key deleted or lost on its own)
  if (!await store.tasks.isEmpty() || !await store.leases.isEmpty()) {
    throw new DataDirError(`the node key is missing from ${where}, which holds tasks: restore the data dir from a backup, or start with a new data dir as a new peer`)
  }
  if (mark !== undefined) {
    throw new DataDirError(`the node key is missing from ${where}, which was peer ${mark || '(unnamed)'} (${join(where, PEER_MARK)}): LevelDB lost what the store held (a log or table deleted or lost), and a new key would make this node another peer holding none of its grants and votes. Restore the data dir from a backup, or start with a new data dir as a new peer`)
  }
  const key = await generateKeyPair('Ed25519')
  await store.putBytes(IDENTITY_KEY, privateKeyToProtobuf(key))
  if (storePath !== undefined) await writeMark(join(storePath, PEER_MARK), peerIdFromPrivateKey(key).toString())
  return key
}

/** The peer id the mark names ('' if it names none); undefined when there is no mark. A mark that cannot be read is refused: it may name another peer. */
async function readMark (file: string): Promise<string | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err?.code === 'ENOENT') return undefined
    throw new DataDirError(`cannot read ${file} (${String(err?.code ?? err?.message)}), which names the peer this store is: fix its permissions, or restore the data dir from a backup`, { cause: err })
  }
  // an empty mark still says the store was a peer: a key lost with it is refused, a key found names it
  return text.trim()
}

/** Writes the mark, synced: it must be on disk before the key's first use. */
async function writeMark (file: string, id: string): Promise<void> {
  await writeSyncedFile(file, `${id}\n`).catch((err: any) => {
    throw new DataDirError(`cannot write ${file} (${String(err?.code ?? err?.message)}), which names the peer this store is`, { cause: err })
  })
}

const MESH_KEY = 'mesh'

/**
 * Refuses a store made for another mesh: its placements and leases name that mesh's peers, and
 * the lease and records protocols are not per mesh, so a node restarted with another `--mesh`
 * served and ran tasks of both. A store from before the mark takes the mesh it is started with.
 */
export async function checkMeshOf (store: Store, mesh: string, where: string): Promise<void> {
  const saved = await savedBytes(store, MESH_KEY, () => new DataDirError(`the mesh name kept in ${where} is unreadable: restore the data dir from a backup, or start with a new data dir`))
  if (saved === undefined) return await store.putBytes(MESH_KEY, new TextEncoder().encode(mesh))
  const was = new TextDecoder().decode(saved)
  if (was !== mesh) throw new DataDirError(`the data dir ${where} is a peer of mesh "${was}", not "${mesh}": a data dir belongs to one mesh (its tasks and placements are that mesh's). Start it with --mesh ${was}, or use a new data dir for mesh "${mesh}"`)
}

/** A meta value of the store; `unreadable`'s error when it is there in another form (a damaged store). */
async function savedBytes (store: Store, key: string, unreadable: () => DataDirError): Promise<Uint8Array | undefined> {
  try {
    return await store.getBytes(key)
  } catch (err: any) {
    if (err?.name !== 'CorruptRecordError') throw err
    throw unreadable()
  }
}
