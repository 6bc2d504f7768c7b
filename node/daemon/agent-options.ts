import { z } from 'zod'
import { InvalidConfigError } from '../errors.js'
import { optionalTimerMs as ms } from '../tasks/options.js'
import type { Agent } from '../runtime/agent.js'

/* schemas only (zod, and the task options' timer bound): the daemon's config schema, which client commands load too, reads it without the network stack */


/** The model calls of the LLM agents (`llm.chat`, `agent`, `plan`) and of vector memory's embedder. */
export const llmOptionsSchema = z.object({
  /** one model call, before it is retried. @default 60_000 */
  timeoutMs: ms(1_000),
  /** retries of a call answered 429 or 5xx (or timed out), honouring Retry-After. @default 3 */
  maxRetries: z.number().int().min(0).max(10).optional(),
  /** a tool-using agent's model calls before it must answer. @default 8 */
  maxSteps: z.number().int().min(1).max(50).optional(),
  /** tokens (prompt and completion) one task may spend across its calls. @default 100_000 */
  maxTokensPerTask: z.number().int().min(1).max(1_000_000_000).optional(),
  /** one call to the embeddings model. @default 30_000 */
  embeddingsTimeoutMs: ms(1_000)
}).strict()

export type LlmOptions = z.infer<typeof llmOptionsSchema>

/** How this node reaches the MCP servers it offers the tools of (`mcpServers`). */
export const mcpClientOptionsSchema = z.object({
  /** how long a server has to start and list its tools. @default 30_000 */
  connectTimeoutMs: ms(1_000, 600_000),
  /** calls of one tool this node runs at once. @default 4 */
  concurrency: z.number().int().min(1).max(1_024).optional(),
  /** the longest a tool call may go without an answer or a progress notification. @default 600_000 */
  callTimeoutMs: ms(1_000),
  /** tools offered in all (presence carries at most 256 capabilities). @default 128 */
  maxTools: z.number().int().min(1).max(256).optional()
}).strict()

/** Tasks an agent runs at once, by the agent's name (as `agents` names it; an MCP tool's is mcp.NAME.TOOL): overrides the agent's own number. */
export const concurrencySchema = z.record(z.string().min(1).max(256), z.number().int().min(1).max(1_024))

/**
 * Refuses a `concurrency` name this node runs no agent for: a typo would leave that agent its own
 * number without a word. The task layer's runtime applies the others (the agents are not copied:
 * an agents module may export class instances).
 */
export function checkConcurrency (agents: Agent[], overrides: Record<string, number> | undefined): void {
  if (overrides === undefined) return
  const names = new Set(agents.map(a => a.name))
  const unknown = Object.keys(overrides).filter(name => !names.has(name))
  if (unknown.length > 0) throw new InvalidConfigError(`concurrency names ${unknown.map(n => `"${n}"`).join(', ')}, which this node runs no agent for; it runs: ${[...names].join(', ') || '(none)'}`)
}
