import { VERSION } from '../version.js'
import { apiRequest, resolveApiUrl } from './client.js'
import { timerMsFlag } from './options.js'
import { MAX_TASK_TIMEOUT_MS } from '../../protocols/task/schema.js'
import { errorLine } from './output.js'
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
    submit: async (capability, input, o) => (await apiRequest<{ id: string }>(url, 'POST', '/v1/tasks', { capability, input, timeoutMs: o.timeoutMs })).id,
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
  attemptTimeoutMs?: number
}

/** Adds `agentmesh mcp`: an MCP server over stdio whose tools are the mesh's capabilities, for desktop MCP clients. */
export function addMcpCommand (program: Command): Command {
  return program.command('mcp')
    .description('serve the mesh\'s capabilities as MCP tools over stdio (for desktop MCP clients)')
    .option('--api <url>', 'control API of a node (default: from --data, else 127.0.0.1:7070)')
    .option('--data <dir>', 'data dir of a running node (reads its node.json)')
    .option('--api-token-file <file>', 'the API\'s bearer token (default: AGENTMESH_API_TOKEN)')
    .option('--progress-interval-ms <ms>', 'progress notifications while a tool runs, at least this often (default 2000)', timerMsFlag('--progress-interval-ms', 600_000, 'as the config file\'s doors.mcp.progressIntervalMs: each poll of the task waits this long, and a wait of 300 s or more outlasts the API\'s'))
    .option('--max-call-ms <ms>', 'the longest a tool call waits for its task (default 600000)', timerMsFlag('--max-call-ms'))
    .option('--attempt-timeout-ms <ms>', 'each attempt\'s timeout, for a tool call\'s task (default 300000)', timerMsFlag('--attempt-timeout-ms', MAX_TASK_TIMEOUT_MS, '7 days, a task\'s longest timeoutMs'))
    .action(runMcpCommand)
}

/**
 * Runs until stdin closes (the client went away: MCP's shutdown over stdio, which cancels the calls
 * under way and their tasks). Stdout carries MCP messages and nothing else; anything for a person
 * goes to stderr.
 */
export async function runMcpCommand (flags: McpFlags): Promise<void> {
  const url = await resolveApiUrl(flags)
  // not fatal: a desktop client may start this before the node, which is asked again on every call
  await apiRequest(url, 'GET', '/v1/health').catch((err: Error) => { errorLine(`warning: ${err.message}`) })
  // loaded here, not at the CLI's start: every command (a node's daemon too) would pay for the SDK
  const [{ connectMcpServer, createMcpServer, malformedRequest }, { StdioServerTransport }] = await Promise.all([import('../../protocols/mcp/index.js'), import('@modelcontextprotocol/sdk/server/stdio.js')])
  const server = createMcpServer(apiBackend(url), { version: VERSION, progressIntervalMs: flags.progressIntervalMs, maxCallMs: flags.maxCallMs, attemptTimeoutMs: flags.attemptTimeoutMs })
  const transport = new StdioServerTransport()
  const closed = new Promise<void>(resolve => { server.onclose = resolve })
  await connectMcpServer(server, transport)
  answerMalformed(transport, malformedRequest)
  server.onerror = err => {
    // a line the transport could not read is answered as JSON-RPC says (id null: the transport keeps
    // no id of a line it refused), not only told on stderr
    const code = err instanceof SyntaxError ? -32700 : err.name === 'ZodError' ? -32600 : undefined
    const message = code === -32700 ? `parse error: ${err.message}` : 'invalid request: not a JSON-RPC 2.0 message'
    if (code !== undefined) void transport.send({ jsonrpc: '2.0', id: null, error: { code, message } } as unknown as JSONRPCMessage).catch(() => {})
    // a ZodError's message is its issues as pages of JSON: one line says it
    errorLine(`mcp: ${code === -32600 ? message : err.message}`)
  }
  process.stdin.once('end', () => { void server.close() })
  await closed
}

/**
 * Answers a request whose params `malformed` finds unfit with that error, as the /mcp door does,
 * before the SDK answers it as an internal error (-32603) with its schema's dump.
 */
function answerMalformed (transport: Transport, malformed: (body: unknown) => { code: number, message: string } | undefined): void {
  const deliver = transport.onmessage
  transport.onmessage = (message, extra) => {
    const m = message as { id?: string | number, method?: string }
    const bad = m.method !== undefined && m.id !== undefined ? malformed(message) : undefined
    if (bad === undefined) deliver?.call(transport, message, extra)
    else void transport.send({ jsonrpc: '2.0', id: m.id as string | number, error: bad }).catch(() => {})
  }
}
