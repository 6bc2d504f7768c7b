import { pathToFileURL } from 'node:url'
import { BUILTIN_AGENTS } from '../agents/index.js'
import { memoryEmbedAgent } from '../agents/memory.js'
import { EMBED_CAPABILITY } from '../memory/remote-embed.js'
import { llmAgents } from '../llm/agents.js'
import type { LlmConfig } from '../llm/config.js'
import { InvalidConfigError } from '../errors.js'
import { AgentRuntime } from '../runtime/runtime.js'
import type { Agent } from '../runtime/agent.js'
import type { Embed } from '../memory/memory-layer.js'

/**
 * The agents a daemon runs: the named built-ins (all by default, none for "none"; with an
 * embeddings model, memory.embed among them) and whatever an agents module exports, as its default
 * export or `agents` (one agent or an array).
 */
export async function resolveAgents (names: string[] | undefined, modulePath: string | undefined, llm?: LlmConfig, embed?: Embed): Promise<Agent[]> {
  const available = [...BUILTIN_AGENTS, ...(llm === undefined ? [] : llmAgents(llm)), ...(embed === undefined ? [] : [memoryEmbedAgent(embed)])]
  let agents: Agent[] = available
  if (names !== undefined) {
    if (names.length === 1 && names[0] === 'none') agents = []
    else {
      agents = names.map(name => {
        const agent = available.find(a => a.name === name)
        if (agent === undefined && ['llm.chat', 'agent', 'plan'].includes(name)) throw new InvalidConfigError(`agent "${name}" needs a model: set --llm-model (or AGENTMESH_MODEL)`)
        if (agent === undefined && name === EMBED_CAPABILITY) throw new InvalidConfigError(`agent "${EMBED_CAPABILITY}" needs an embeddings model: set --embeddings-model (or AGENTMESH_EMBEDDINGS_MODEL)`)
        if (agent === undefined) throw new InvalidConfigError(`unknown agent "${name}"; agents: ${available.map(a => a.name).join(', ')}`)
        return agent
      })
    }
  }
  if (modulePath === undefined) return agents
  let mod: any
  // a top-level await that nothing will settle empties the event loop: Node would exit 13 with its
  // own warning about our entry point, so the load is refused here instead
  let drained!: () => void
  const neverLoads = new Promise<never>((_resolve, reject) => { drained = () => { reject(new Error('its top-level await never settles (nothing is left to settle it)')) } })
  process.once('beforeExit', drained)
  try {
    mod = await Promise.race([import(pathToFileURL(modulePath).href), neverLoads])
  } catch (err: any) {
    throw new InvalidConfigError(`cannot load agents module ${modulePath}: ${err.message}`)
  } finally {
    process.off('beforeExit', drained)
  }
  const exported = mod.agents ?? mod.default
  const loaded: unknown[] = Array.isArray(exported) ? exported : exported === undefined ? [] : [exported]
  if (loaded.length === 0) throw new InvalidConfigError(`agents module ${modulePath} exports no agents (export default an agent or an array, or export const agents)`)
  const all = [...agents, ...loaded as Agent[]]
  try {
    void new AgentRuntime(all)
  } catch (err: any) {
    throw new InvalidConfigError(`agents module ${modulePath}: ${err.message}`)
  }
  return all
}
