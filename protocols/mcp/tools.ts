import { ContentBlockSchema } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { toolSchema } from '../tools/tool-schema.js'
import { TASK_META_KEY } from './constants.js'
import type { CapabilityInfo } from '../gossip/index.js'
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js'

/** A capability served as an MCP tool, and whether its input travels wrapped as `{input}`. */
export interface MeshTool {
  tool: Tool
  wrapped: boolean
  /** the capability's own input schema, as its peers published it */
  inputSchema?: Record<string, unknown>
}

/**
 * One tool per capability name, in name order. Peers may tell different things about one name (a
 * names-only announcement, an older version): the first that describes it wins. Capability names
 * are already within MCP's tool name charset ([A-Za-z0-9._-]), so they are used as they are.
 */
export function meshTools (capabilities: Iterable<CapabilityInfo>): MeshTool[] {
  const byName = new Map<string, CapabilityInfo>()
  for (const cap of capabilities) {
    const known = byName.get(cap.name)
    if (known === undefined || (known.inputSchema === undefined && known.description === undefined)) byName.set(cap.name, cap)
  }
  return [...byName.values()].sort((a, b) => a.name < b.name ? -1 : 1).map(cap => {
    const { parameters, wrapped } = toolSchema(cap.inputSchema)
    return {
      tool: {
        name: cap.name,
        ...(cap.description === undefined ? {} : { description: cap.description }),
        inputSchema: parameters as Tool['inputSchema']
      },
      wrapped,
      ...(cap.inputSchema === undefined ? {} : { inputSchema: cap.inputSchema })
    }
  })
}

/** How a mesh task ended, as far as a tool call saw it. */
export interface TaskOutcome {
  id: string
  /** completed, canceled, dead; or pending, running, failed while not done */
  state: string
  /** true once the state is final */
  done: boolean
  result?: unknown
  /** why a task did not complete */
  error?: string
}

/** A finished task as a tool result: completed is content (and structured content for objects), anything else isError. */
export function toolResult (outcome: TaskOutcome): CallToolResult {
  const _meta = { [TASK_META_KEY]: outcome.id }
  if (outcome.state !== 'completed') {
    return { content: [{ type: 'text', text: `task ${outcome.id} ${outcome.state}${outcome.error === undefined ? '' : `: ${outcome.error}`}` }], isError: true, _meta }
  }
  const value = outcome.result
  // an MCP tool's own blocks (an image, a resource), as another peer's MCP server answered them
  const blocks = contentBlocksOf(value)
  if (blocks !== undefined) return { content: blocks, _meta }
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null)
  // structuredContent is a JSON object by the spec: anything else is only text
  const structured = value !== null && typeof value === 'object' && !Array.isArray(value)
  return { content: [{ type: 'text', text }], ...(structured ? { structuredContent: value as Record<string, unknown> } : {}), _meta }
}

/**
 * The content blocks of a result that is `{content: [...]}` and nothing else, each a valid MCP
 * block with one not text among them: what a peer keeps of an MCP tool's answer that was not all
 * text (node/mcp/clients.ts). Anything else is a plain value.
 */
function contentBlocksOf (value: unknown): CallToolResult['content'] | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  const keys = Object.keys(value)
  if (keys.length !== 1 || keys[0] !== 'content') return undefined
  const parsed = z.array(ContentBlockSchema).min(1).safeParse((value as { content: unknown }).content)
  if (!parsed.success || parsed.data.every(b => b.type === 'text')) return undefined
  return parsed.data
}

/** An error a tool call answers with (the task could not be submitted, or it ran too long). */
export function toolError (message: string, taskId?: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true, ...(taskId === undefined ? {} : { _meta: { [TASK_META_KEY]: taskId } }) }
}
