import { createHash } from 'node:crypto'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { UnrecoverableTaskError } from '../runtime/agent.js'
import { VERSION } from '../version.js'
import { describeServer } from './config.js'
import type { McpServerConfig } from './config.js'
import type { Agent } from '../runtime/agent.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js'

/** An MCP server that could not be started, reached or listed. */
export class McpServerError extends Error {
  static override name = 'McpServerError'
  constructor (message: string) { super(message); this.name = 'McpServerError' }
}

export interface McpClientsInit {
  /** how long a server has to start and list its tools. @default 30_000 */
  connectTimeoutMs?: number
  /** tool calls one node runs at once, per tool. @default 4 */
  concurrency?: number
  /**
   * The longest one tool call may go without an answer or a progress notification; the task's own
   * timeout (which aborts the call) is usually the tighter bound. @default 600_000
   */
  callTimeoutMs?: number
  /** tools offered in all, past which the rest are left out (presence carries at most 256 capabilities). @default 128 */
  maxTools?: number
  logger: ComponentLogger
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000
export const DEFAULT_MCP_CONCURRENCY = 4
export const DEFAULT_CALL_TIMEOUT_MS = 600_000
export const DEFAULT_MAX_MCP_TOOLS = 128
/** The longest description presence carries. */
const MAX_DESCRIPTION = 1024

export interface McpClients {
  /** one agent per tool, offering `mcp.NAME.TOOL` */
  agents: Agent[]
  /** closes every client (and stops every server this node started) */
  close: () => Promise<void>
}

/**
 * Connects to every MCP server (starting those given as commands), lists their tools and makes an
 * agent of each. One that fails fails the whole start, with its name and the reason, after the
 * others are closed again.
 */
export async function connectMcpServers (servers: Record<string, McpServerConfig>, init: McpClientsInit): Promise<McpClients> {
  const connected: Array<{ name: string, client: Client, tools: Tool[] }> = []
  const results = await Promise.allSettled(Object.entries(servers).map(async ([name, server]) => {
    const c = await connectOne(name, server, init)
    connected.push(c)
    return c
  }))
  const close = async (): Promise<void> => { await Promise.all(connected.map(async c => c.client.close().catch(() => {}))) }
  const failed = results.find(r => r.status === 'rejected')
  if (failed !== undefined) {
    await close()
    throw failed.reason
  }
  const agents: Agent[] = []
  const taken = new Set<string>()
  const maxTools = init.maxTools ?? DEFAULT_MAX_MCP_TOOLS
  for (const { name, client, tools } of connected.sort((a, b) => a.name < b.name ? -1 : 1)) {
    const log = init.logger.forComponent(`agentmesh:mcp:${name}`)
    for (const tool of tools) {
      if (agents.length >= maxTools) {
        log.error('more than %d MCP tools: %s and the rest of this server are left out', maxTools, tool.name)
        break
      }
      const capability = capabilityName(name, tool.name, taken)
      taken.add(capability)
      agents.push(toolAgent(capability, client, tool, init, log))
    }
  }
  return { agents, close }
}

async function connectOne (name: string, server: McpServerConfig, init: McpClientsInit): Promise<{ name: string, client: Client, tools: Tool[] }> {
  const log = init.logger.forComponent(`agentmesh:mcp:${name}`)
  const stderr: string[] = []
  let transport: Transport
  if ('url' in server) {
    transport = new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: server.headers ?? {} } })
  } else {
    const stdio = new StdioClientTransport({ command: server.command, args: server.args, env: server.env, cwd: server.cwd, stderr: 'pipe' })
    // the server's own messages go to this node's log; the last few explain a failed start
    stdio.stderr?.on('data', (chunk: Buffer) => {
      for (const text of String(chunk).split('\n').filter(l => l.trim() !== '')) {
        log('stderr: %s', text)
        stderr.push(text)
        if (stderr.length > 5) stderr.shift()
      }
    })
    transport = stdio
  }
  const client = new Client({ name: 'agentmesh', version: VERSION })
  const timeout = init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  try {
    await client.connect(transport, { timeout })
    const tools: Tool[] = []
    let cursor: string | undefined
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout })
      tools.push(...page.tools)
      cursor = page.nextCursor
    } while (cursor !== undefined)
    log('connected to %s: %d tools', describeServer(server), tools.length)
    return { name, client, tools }
  } catch (err: any) {
    await client.close().catch(() => {})
    const said = stderr.length === 0 ? '' : ` (it said: ${stderr.at(-1) ?? ''})`
    throw new McpServerError(`MCP server "${name}" (${describeServer(server)}) did not start: ${typeof err?.code === 'string' ? err.code : err?.message ?? String(err)}${said}`)
  }
}

/**
 * `mcp.SERVER.TOOL` within the capability charset and 64 characters; a name cut short or already
 * taken ends in a hash of the whole, so two tools never share a capability.
 */
export function capabilityName (server: string, tool: string, taken: Set<string> = new Set()): string {
  const full = `mcp.${server}.${tool}`
  const clean = full.replace(/[^A-Za-z0-9._-]/g, '_')
  if (clean.length <= 64 && !taken.has(clean)) return clean
  return `${clean.slice(0, 55)}-${createHash('sha256').update(full).digest('hex').slice(0, 8)}`
}

function toolAgent (capability: string, client: Client, tool: Tool, init: McpClientsInit, log: Logger): Agent {
  const description = tool.description ?? tool.title ?? `MCP tool ${tool.name}`
  return {
    name: capability,
    capabilities: [{ name: capability, description: description.slice(0, MAX_DESCRIPTION), inputSchema: tool.inputSchema as Record<string, unknown> }],
    concurrency: init.concurrency ?? DEFAULT_MCP_CONCURRENCY,
    run: async ctx => {
      const args = ctx.input ?? {}
      if (typeof args !== 'object' || Array.isArray(args)) throw new UnrecoverableTaskError(`${capability} takes a JSON object: the arguments of MCP tool ${tool.name}`)
      const result = await client.callTool({ name: tool.name, arguments: args as Record<string, unknown> }, undefined, {
        signal: ctx.signal,
        timeout: init.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
        resetTimeoutOnProgress: true,
        onprogress: p => { ctx.progress(p) }
      }) as CallToolResult
      // the tool said no (bad arguments, a refusal): running it again would say the same
      if (result.isError === true) throw new UnrecoverableTaskError(`${tool.name}: ${textOf(result) || 'the tool reported an error'}`)
      log.trace('%s answered', tool.name)
      return valueOf(result)
    }
  }
}

function textOf (result: CallToolResult): string {
  return (result.content ?? []).flatMap(c => c.type === 'text' ? [c.text] : []).join('\n')
}

/** The structured content when there is some; else the text; else the content blocks as they are (images, resources). */
function valueOf (result: CallToolResult): unknown {
  if (result.structuredContent !== undefined) return result.structuredContent
  const content = result.content ?? []
  if (content.every(c => c.type === 'text')) return textOf(result)
  return { content }
}
