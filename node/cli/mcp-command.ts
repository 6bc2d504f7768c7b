import { VERSION } from '../version.js'
import { apiRequest, resolveApiUrl } from './client.js'
import { positiveWholeNumber } from './options.js'
import { errorLine } from './output.js'
import { DEFAULT_MAX_CALL_MS } from '../../protocols/mcp/constants.js'
import type { MeshBackend } from '../../protocols/mcp/index.js'
import type { CapabilityInfo } from '../../protocols/gossip/index.js'
import type { ClientTarget } from './client.js'
import type { Command } from 'commander'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

const FINAL = new Set(['completed', 'canceled', 'dead'])
/** A long poll's answer may come this much after its wait ends before the request counts as lost. */
const POLL_SLACK_MS = 30_000

/** The MCP server's view of the mesh, through a node's HTTP API (the token, if any, is sent by apiRequest). */
export function apiBackend (url: string): MeshBackend {
  return {
    capabilities: async () => {
      const { capabilities } = await apiRequest<{ capabilities: Array<CapabilityInfo & { peers?: unknown }> }>(url, 'GET', '/v1/capabilities')
      return capabilities.map(({ peers: _peers, ...info }) => info)
    },
    submit: async (capability, input) => (await apiRequest<{ id: string }>(url, 'POST', '/v1/tasks', { capability, input })).id,
    wait: async (id, waitMs) => {
      const body = await apiRequest<{ state: string, result?: unknown, error?: string }>(url, 'GET', `/v1/tasks/${id}/result?wait=${waitMs}`, undefined, waitMs + POLL_SLACK_MS)
      // a completion whose result has not reached the node yet is not done: the next wait brings it
      const done = FINAL.has(body.state) && (body.state !== 'completed' || 'result' in body)
      return { id, state: body.state, done, result: body.result, ...(body.error === undefined ? {} : { error: body.error }) }
    },
    cancel: async id => { await apiRequest(url, 'POST', `/v1/tasks/${id}/cancel`) }
  }
}

export interface McpFlags extends ClientTarget {
  progressIntervalMs?: number
  maxCallMs?: number
}

/** Adds `agentmesh mcp`: an MCP server over stdio whose tools are the mesh's capabilities, for desktop MCP clients. */
export function addMcpCommand (program: Command): Command {
  return program.command('mcp')
    .description('serve the mesh\'s capabilities as MCP tools over stdio (for desktop MCP clients)')
    .option('--api <url>', 'control API of a node (default: from --data, else 127.0.0.1:7070)')
    .option('--data <dir>', 'data dir of a running node (reads its node.json)')
    .option('--api-token-file <file>', 'the API\'s bearer token (default: AGENTMESH_API_TOKEN)')
    .option('--progress-interval-ms <ms>', 'progress notifications while a tool runs, at least this often (default 2000)', positiveWholeNumber('--progress-interval-ms'))
    .option('--max-call-ms <ms>', 'the longest a tool call waits for its task (default 600000)', positiveWholeNumber('--max-call-ms'))
    .action(runMcpCommand)
}

/**
 * Runs until stdin closes (the client went away, or a piped script ended), and answers the calls
 * under way first: each ends within --max-call-ms. Stdout carries MCP messages and nothing else;
 * anything for a person goes to stderr.
 */
export async function runMcpCommand (flags: McpFlags): Promise<void> {
  const url = await resolveApiUrl(flags)
  // not fatal: a desktop client may start this before the node, which is asked again on every call
  await apiRequest(url, 'GET', '/v1/health').catch((err: Error) => { errorLine(`warning: ${err.message}`) })
  // loaded here, not at the CLI's start: every command (a node's daemon too) would pay for the SDK
  const [{ connectMcpServer, createMcpServer, malformedRequest }, { StdioServerTransport }] = await Promise.all([import('../../protocols/mcp/index.js'), import('@modelcontextprotocol/sdk/server/stdio.js')])
  const server = createMcpServer(apiBackend(url), { version: VERSION, progressIntervalMs: flags.progressIntervalMs, maxCallMs: flags.maxCallMs })
  const transport = new StdioServerTransport()
  const closed = new Promise<void>(resolve => { server.onclose = resolve })
  await connectMcpServer(server, transport)
  const underWay = answeredRequests(transport, malformedRequest)
  server.onerror = err => {
    // a line the transport could not read is answered as JSON-RPC says (id null: none could be read), not only told on stderr
    const code = err instanceof SyntaxError ? -32700 : err.name === 'ZodError' ? -32600 : undefined
    if (code !== undefined) void transport.send({ jsonrpc: '2.0', id: null, error: { code, message: code === -32700 ? `parse error: ${err.message}` : 'invalid request: not a JSON-RPC 2.0 message' } } as unknown as JSONRPCMessage)
    errorLine(`mcp: ${err.message}`)
  }
  process.stdin.once('end', () => { void underWay.settled((flags.maxCallMs ?? DEFAULT_MAX_CALL_MS) + POLL_SLACK_MS).then(async () => server.close()) })
  await closed
}

/**
 * Requests not answered yet, by id: the transport's messages are counted in and its responses out.
 * A request `malformed` names (its params unfit) is answered here with that error, as the /mcp door
 * answers it, instead of the SDK's internal error.
 */
function answeredRequests (transport: Transport, malformed: (body: unknown) => { code: number, message: string } | undefined): { settled: (limitMs: number) => Promise<void> } {
  const pending = new Set<string | number>()
  let idle: (() => void) | undefined
  const answered = (id: string | number): void => { if (pending.delete(id) && pending.size === 0) idle?.() }
  const deliver = transport.onmessage
  transport.onmessage = (message, extra) => {
    const m = message as { id?: string | number, method?: string, params?: { requestId?: string | number } }
    // a request the client cancels is never answered (MCP): nothing to wait for
    if (m.method === 'notifications/cancelled' && m.params?.requestId !== undefined) answered(m.params.requestId)
    if (m.method !== undefined && m.id !== undefined) {
      const bad = malformed(message)
      if (bad !== undefined) {
        void transport.send({ jsonrpc: '2.0', id: m.id, error: bad })
        return
      }
      pending.add(m.id)
    }
    deliver?.call(transport, message, extra)
  }
  const send = transport.send.bind(transport)
  transport.send = async (message, options) => {
    const m = message as { id?: string | number, method?: string }
    const sent = send(message, options)
    if (m.method === undefined && m.id !== undefined) void sent.then(() => { answered(m.id as string | number) })
    return sent
  }
  // bounded all the same: a request the SDK never answers must not keep the command alive for good
  return {
    settled: async limitMs => {
      if (pending.size === 0) return
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, limitMs)
        idle = () => { clearTimeout(timer); resolve() }
      })
    }
  }
}
