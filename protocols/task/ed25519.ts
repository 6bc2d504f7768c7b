import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { KeyObject } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'

/*
 * Ed25519 through node:crypto key objects made once per key. @libp2p/crypto imports the key
 * from JWK on every signature and every check: most of the cost of a vote under load.
 */

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
/** public keys by peer id; bounded, a mesh has far fewer peers */
const publicKeys = new Map<string, KeyObject | null>()
const MAX_KEYS = 10_000

function publicKeyOf (peer: string): KeyObject | null {
  let key = publicKeys.get(peer)
  if (key !== undefined) return key
  try {
    const pub = peerIdFromString(peer).publicKey
    key = pub?.type === 'Ed25519' ? createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub.raw]), format: 'der', type: 'spki' }) : null
  } catch {
    key = null
  }
  if (publicKeys.size >= MAX_KEYS) publicKeys.clear()
  publicKeys.set(peer, key)
  return key
}

/**
 * Checks that held, by a digest of signer, signature and message: a message that several nodes of
 * one process (the simulator: every presence message by each of 50) or several paths of one node
 * check costs one check, a hash (a few µs) where a check is about 50. Only good ones are kept, so a
 * peer fills it only with what it validly signed; bounded, and emptied when full.
 */
const goodChecks = new Set<string>()
const MAX_GOOD_CHECKS = 8_192

/** Whether `peer` (an Ed25519 peer id) signed `message`; false for any malformed input. */
export function verifyBy (peer: string, message: Uint8Array, signature: Uint8Array): boolean {
  const key = publicKeyOf(peer)
  if (key === null || signature.byteLength !== 64) return false
  // a peer id has no newline and a signature is 64 bytes: the parts cannot run into each other
  const digest = createHash('sha256').update(peer).update('\n').update(signature).update(message).digest('base64')
  if (goodChecks.has(digest)) return true
  let good: boolean
  try {
    good = verify(null, message, key, signature)
  } catch {
    return false
  }
  if (!good) return false
  if (goodChecks.size >= MAX_GOOD_CHECKS) goodChecks.clear()
  goodChecks.add(digest)
  return true
}

/** A signing function for a libp2p Ed25519 private key, its key object made once. */
export function signerOf (privateKey: PrivateKey): (message: Uint8Array) => Uint8Array | Promise<Uint8Array> {
  // another key type (a node key made elsewhere) signs through libp2p, as before
  if (privateKey.type !== 'Ed25519') return async message => privateKey.sign(message)
  // raw is the 32-byte seed followed by the 32-byte public key
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateKey.raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' })
  return message => sign(null, message, key)
}
