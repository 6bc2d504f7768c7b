import { createHash } from 'node:crypto'
import type { CapabilityInfo } from '../gossip/index.js'

/** The capability every chat node offers for its default model. */
export const CHAT_CAPABILITY = 'llm.chat'

const PREFIX = `${CHAT_CAPABILITY}.`
/** what a capability name may hold after the prefix: letters, digits, . _ - (64 in all) */
const SAFE = /^[A-Za-z0-9._-]+$/
const MAX_CAPABILITY = 64

/**
 * The capability that serves one model: `llm.chat.<model>`. A name that fits as it is stays
 * readable; any other (a `/`, a `:`, too long) has its other characters mapped to `_`, is cut, and
 * gets 8 hex digits of the name's SHA-256, so two models never share a capability and every node
 * computes the same one.
 */
export function chatCapability (model: string): string {
  if (SAFE.test(model) && PREFIX.length + model.length <= MAX_CAPABILITY) return PREFIX + model
  const hash = createHash('sha256').update(model).digest('hex').slice(0, 8)
  const room = MAX_CAPABILITY - PREFIX.length - hash.length - 1
  return `${PREFIX}${model.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, room)}-${hash}`
}

/** One entry of `GET /v1/models`, in OpenAI's shape. */
export interface ModelEntry {
  id: string
  object: 'model'
  created: number
  owned_by: string
}

/**
 * The models live peers serve, each once, in name order, with the capability that runs it. A
 * capability whose info names a model serves that model; the first peer seen decides which
 * capability a model maps to (all peers compute the same one).
 */
export function liveModels (peers: Array<{ capabilities: CapabilityInfo[] }>): Map<string, string> {
  const out = new Map<string, string>()
  for (const peer of peers) {
    for (const cap of peer.capabilities) {
      // only the model's own capability: a peer naming a model on another one would route it there
      if (cap.model !== undefined && !out.has(cap.model) && cap.name === chatCapability(cap.model)) out.set(cap.model, cap.name)
    }
  }
  return new Map([...out].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
}
