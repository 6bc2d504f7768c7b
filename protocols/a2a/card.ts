import { A2A_PROTOCOL_VERSION } from '@a2a-js/sdk'
import { A2A_LEGACY_PROTOCOL_VERSION } from '@a2a-js/sdk/compat/v0_3'
import { A2A_PATH, AGENT_CAPABILITY, JSON_MODE, TEXT_MODE } from './constants.js'
import type { CapabilityInfo } from '../gossip/index.js'
import type { AgentCard, AgentSkill } from '@a2a-js/sdk'

export interface CardInit {
  /** @default 'agentmesh' */
  name?: string
  /** the node's software version */
  version: string
}


/**
 * The mesh's live capabilities as A2A skills, one per name (many peers offer the same one): the
 * skill id is the capability name, which a message names in `metadata.skill`.
 */
export function skillsOf (live: Array<{ capabilities: CapabilityInfo[] }>): AgentSkill[] {
  const byName = new Map<string, CapabilityInfo>()
  for (const peer of live) {
    for (const c of peer.capabilities) {
      const seen = byName.get(c.name)
      // a peer that announced only the name must not hide another's description and schema
      byName.set(c.name, { ...c, ...seen, description: seen?.description ?? c.description, inputSchema: seen?.inputSchema ?? c.inputSchema })
    }
  }
  return [...byName.values()].sort((a, b) => a.name < b.name ? -1 : 1).map(c => ({
    id: c.name,
    name: c.name,
    description: c.name === AGENT_CAPABILITY
      ? `${c.description ?? 'a tool-using agent'}; takes any plain text message that names no skill`
      : (c.description ?? `the mesh capability ${c.name}`),
    tags: [...new Set(['agentmesh', c.name.split('.')[0] as string])],
    examples: [],
    inputModes: inputModes(c),
    outputModes: [JSON_MODE, TEXT_MODE],
    securityRequirements: []
  }))
}

/**
 * A text part suits a capability that takes a string; a data part one that takes an object. The
 * agent takes both: a text part as its prompt, a data part as its whole input.
 */
function inputModes (c: CapabilityInfo): string[] {
  if (c.name === AGENT_CAPABILITY) return [TEXT_MODE, JSON_MODE]
  const type = c.inputSchema?.type
  if (type === 'object') return [JSON_MODE]
  if (type === 'string') return [TEXT_MODE]
  return [TEXT_MODE, JSON_MODE]
}

/**
 * The A2A 1.0 card: one JSON-RPC endpoint, `base` + /a2a, that speaks 1.0 and 0.3 (the SDK's
 * method names of either version are routed by name).
 */
export function agentCard (base: string, skills: AgentSkill[], init: CardInit): AgentCard {
  const url = `${base}${A2A_PATH}`
  return {
    name: init.name ?? 'agentmesh',
    description: 'A peer-to-peer mesh of agents. Each skill is a capability that some live peer of the mesh offers; ' +
      'name it in the message metadata (metadata.skill) and send its input as a data part (or a text part). ' +
      'The task runs on whichever peer claims it, and its id is the mesh task id: any node of the mesh answers tasks/get and tasks/cancel for it.',
    supportedInterfaces: [
      { url, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_PROTOCOL_VERSION },
      { url, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_LEGACY_PROTOCOL_VERSION }
    ],
    provider: undefined,
    version: init.version,
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: [TEXT_MODE, JSON_MODE],
    defaultOutputModes: [JSON_MODE, TEXT_MODE],
    skills,
    signatures: []
  }
}

/**
 * The same card in A2A 0.3's shape (`url`, `protocolVersion`, `preferredTransport`), with the 1.0
 * interfaces kept alongside, as the SDK's own server answers a client that does not ask for 1.0.
 */
export function legacyAgentCard (card: AgentCard): Record<string, unknown> {
  const primary = card.supportedInterfaces.find(i => i.protocolVersion === A2A_LEGACY_PROTOCOL_VERSION) ?? card.supportedInterfaces[0]
  return {
    name: card.name,
    description: card.description,
    version: card.version,
    url: primary?.url,
    preferredTransport: primary?.protocolBinding,
    protocolVersion: A2A_LEGACY_PROTOCOL_VERSION,
    capabilities: { streaming: card.capabilities?.streaming === true, pushNotifications: false },
    defaultInputModes: card.defaultInputModes,
    defaultOutputModes: card.defaultOutputModes,
    skills: card.skills.map(s => ({ id: s.id, name: s.name, description: s.description, tags: s.tags, inputModes: s.inputModes, outputModes: s.outputModes })),
    supportsAuthenticatedExtendedCard: false,
    supportedInterfaces: card.supportedInterfaces
  }
}
