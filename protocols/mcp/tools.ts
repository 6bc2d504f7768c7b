import { toolSchema } from '../tools/tool-schema.js'
import { TASK_META_KEY } from './constants.js'
import type { CapabilityInfo } from '../gossip/index.js'
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js'

/** A capability served as an MCP tool, and whether its input travels wrapped as `{input}`. */
export interface MeshTool {
  tool: Tool
  wrapped: boolean
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
      wrapped
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
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null)
  // structuredContent is a JSON object by the spec: anything else is only text
  const structured = value !== null && typeof value === 'object' && !Array.isArray(value)
  return { content: [{ type: 'text', text }], ...(structured ? { structuredContent: value as Record<string, unknown> } : {}), _meta }
}

/** An error a tool call answers with (the task could not be submitted, or it ran too long). */
export function toolError (message: string, taskId?: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true, ...(taskId === undefined ? {} : { _meta: { [TASK_META_KEY]: taskId } }) }
}
