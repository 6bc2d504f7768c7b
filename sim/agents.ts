import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { z } from 'zod'
import { mapreduceAgent } from '../node/agents/mapreduce.js'
import type { Agent } from '../node/runtime/agent.js'

/**
 * What every simulated result carries besides its answer: who ran it and a fresh nonce. Two
 * executions of one task can then never return equal values, so a second accepted result cannot
 * hide behind the first (the built-in echo returns its input, the same from every peer).
 */
export interface ExecutionStamp {
  /** the executing peer's id; `pid:<n>` in a daemon, where the module is loaded before the peer exists */
  by: string
  nonce: string
}

export const SIM_CAPABILITIES = { echo: 'sim.echo', sleep: 'sim.sleep', mapreduce: 'sim.mapreduce' } as const

/** The simulator's agents; `self` names the executing peer (in one process, each node's own). */
export function simAgents (self?: () => string | undefined): Agent[] {
  const stamp = (): ExecutionStamp => ({ by: self?.() ?? `pid:${process.pid}`, nonce: randomUUID() })
  const echo: Agent = {
    name: SIM_CAPABILITIES.echo,
    capabilities: [{ name: SIM_CAPABILITIES.echo, description: 'returns {echo: input, by, nonce}: the input, the executing peer and a fresh nonce' }],
    concurrency: 8,
    run: async ctx => ({ echo: ctx.input, ...stamp() })
  }
  const sleep: Agent<{ ms: number }> = {
    name: SIM_CAPABILITIES.sleep,
    capabilities: [{ name: SIM_CAPABILITIES.sleep, description: 'waits ms milliseconds (stops when aborted), then returns {slept, by, nonce}' }],
    concurrency: 8,
    inputSchema: z.object({ ms: z.number().int().min(0).max(3_600_000) }),
    run: async ctx => {
      await delay(ctx.input.ms, undefined, { signal: ctx.signal })
      return { slept: ctx.input.ms, ...stamp() }
    }
  }
  const mapreduce: Agent = {
    name: SIM_CAPABILITIES.mapreduce,
    capabilities: [{ name: SIM_CAPABILITIES.mapreduce, description: 'the mapreduce agent\'s word count, stamped with {by, nonce}' }],
    concurrency: mapreduceAgent.concurrency,
    inputSchema: mapreduceAgent.inputSchema,
    run: async ctx => ({ ...(await mapreduceAgent.run(ctx) as Record<string, unknown>), ...stamp() })
  }
  return [echo, sleep, mapreduce]
}

/** For `--processes`: each daemon loads this module as its agents module (config `agentsModule`). */
export const agents: Agent[] = simAgents()
