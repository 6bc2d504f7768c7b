import { echoAgent, failAgent, sha256Agent, sleepAgent, textStatsAgent, wordcountAgent } from './basic.js'
import { mapreduceAgent } from './mapreduce.js'
import { MEMORY_AGENTS } from './memory.js'
import type { Agent } from '../runtime/agent.js'

/** The built-in agents: deterministic, real work, no API key. */
export const BUILTIN_AGENTS: Agent[] = [echoAgent, sleepAgent, failAgent, wordcountAgent, textStatsAgent, sha256Agent, mapreduceAgent, ...MEMORY_AGENTS]

export function builtinAgent (name: string): Agent | undefined {
  return BUILTIN_AGENTS.find(a => a.name === name)
}
