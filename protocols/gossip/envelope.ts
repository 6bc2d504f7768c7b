import { peerIdFromString } from '@libp2p/peer-id'
import { verifyBy } from '../task/ed25519.js'
import type { PrivateKey } from '@libp2p/interface'

/**
 * A signed gossip message: [version 1][payload JSON][64-byte Ed25519 signature]. The signature
 * covers the topic too, so a message cannot be replayed onto another topic or mesh. Gossipsub's own
 * signing is off (StrictNoSign) so that a bad signature reaches our validator and is counted.
 */
const VERSION = 1
const SIG_BYTES = 64

export type OpenFailure = 'malformed' | 'bad-signature'

/** `payload` given as JSON text is sent as it is (how a test writes what JSON.stringify cannot). */
export async function seal (key: PrivateKey, topic: string, payload: object | string): Promise<Uint8Array> {
  const body = new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload))
  const sig = await key.sign(signedBytes(topic, body))
  const out = new Uint8Array(1 + body.byteLength + SIG_BYTES)
  out[0] = VERSION
  out.set(body, 1)
  out.set(sig, 1 + body.byteLength)
  return out
}

/** The payload, if the bytes are an envelope whose `from` field signed them for this topic. */
export async function open (topic: string, data: Uint8Array): Promise<{ ok: true, payload: Record<string, unknown> & { from: string } } | { ok: false, reason: OpenFailure }> {
  if (data.byteLength < 1 + 2 + SIG_BYTES || data[0] !== VERSION) return { ok: false, reason: 'malformed' }
  const body = data.subarray(1, data.byteLength - SIG_BYTES)
  const sig = data.subarray(data.byteLength - SIG_BYTES)
  let payload: any
  try {
    payload = JSON.parse(new TextDecoder().decode(body))
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  if (typeof payload !== 'object' || payload === null || typeof payload.from !== 'string') return { ok: false, reason: 'malformed' }
  try {
    peerIdFromString(payload.from)
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  if (!verifyBy(payload.from, signedBytes(topic, body), sig)) return { ok: false, reason: 'bad-signature' }
  return { ok: true, payload }
}

function signedBytes (topic: string, body: Uint8Array): Uint8Array {
  const prefix = new TextEncoder().encode(`agentmesh:${topic}\n`)
  const out = new Uint8Array(prefix.byteLength + body.byteLength)
  out.set(prefix)
  out.set(body, prefix.byteLength)
  return out
}
