import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { CallToolRequestSchema, ErrorCode, InitializeRequestSchema, JSONRPCMessageSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import { WRAPPED_INPUT, inputProblem, toolInput } from '../tools/tool-schema.js'
import { DEFAULT_ATTEMPT_TIMEOUT_MS, DEFAULT_MAX_CALL_MS, DEFAULT_PROGRESS_INTERVAL_MS } from './constants.js'
import { meshTools, toolError, toolResult } from './tools.js'
import type { TaskOutcome } from './tools.js'
import type { CapabilityInfo } from '../gossip/index.js'
import type { Logger } from '@libp2p/interface'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { JSON_VALUE_WHAT, isJsonValue } from '../task/json-value.js'

/**
 * Per server: ids of tools/call requests whose `arguments` had an own "__proto__" key as it came off
 * the wire. The SDK's schema copies `arguments` key by key, and assigning that key sets a prototype
 * instead: the key was gone before the handler ran, and a task ran without it.
 */
const protoCalls = new WeakMap<Server, Set<string | number>>()

/**
 * `server.connect(transport)`, and each message looked at as it arrives, before the SDK parses it:
 * a tools/call whose arguments carry a "__proto__" key is refused as a tool error, as one nested
 * deeper is. Every transport (HTTP, stdio) connects through here.
 */
export async function connectMcpServer (server: Server, transport: Transport): Promise<void> {
  await server.connect(transport)
  const deliver = transport.onmessage
  const ids = protoCalls.get(server)
  if (deliver === undefined || ids === undefined) return
  transport.onmessage = (message, extra) => {
    for (const m of Array.isArray(message) ? message : [message]) {
      const call = m as { method?: unknown, id?: unknown, params?: { arguments?: unknown } }
      const args = call.params?.arguments
      if (call.method !== 'tools/call' || (typeof call.id !== 'string' && typeof call.id !== 'number')) continue
      // a client may use an id again once answered: each call says for itself
      if (typeof args === 'object' && args !== null && Object.hasOwn(args, '__proto__')) ids.add(call.id)
      else ids.delete(call.id)
    }
    deliver.call(transport, message, extra)
  }
}

/**
 * What the MCP server needs of a mesh: a node's task layer (the /mcp door) or a node's HTTP API
 * (`agentmesh mcp --api URL`).
 */
export interface MeshBackend {
  /** the capabilities live on the mesh now (repeats across peers are fine) */
  capabilities: () => Promise<CapabilityInfo[]>
  /** submits a task from the node; resolves with its id */
  submit: (capability: string, input: unknown, options: { timeoutMs: number }) => Promise<string>
  /** the task's outcome after waiting up to `waitMs` for it to be final */
  wait: (id: string, waitMs: number) => Promise<TaskOutcome>
  cancel: (id: string) => Promise<void>
  /**
   * Calls `listener` with each progress event the running agent reports, wherever it runs;
   * answers the unsubscribe. Without it, progress is the task's state only.
   */
  progress?: (id: string, listener: (event: unknown) => void) => () => void
  /**
   * Aborts when the node serving the calls stops: an open call then answers at once that its task
   * carries on, where its stream was cut and the client waited for its own timeout (60 s by default).
   */
  stopping?: AbortSignal
}

/** The longest progress message sent for an event that is not text. */
const MAX_EVENT_TEXT = 500

export interface McpServerInit {
  /** the version told to clients */
  version: string
  /** @default 2_000 (DEFAULT_PROGRESS_INTERVAL_MS) */
  progressIntervalMs?: number
  /** @default 600_000 (DEFAULT_MAX_CALL_MS) */
  maxCallMs?: number
  /** each attempt's timeout, for a call's task. @default 300_000 (DEFAULT_ATTEMPT_TIMEOUT_MS) */
  attemptTimeoutMs?: number
  log?: Logger
  /** told of a call refused as the client's mistake inside the SDK (an unknown tool), to count it */
  onRefused?: (message: string) => void
}

/**
 * A request the SDK would answer with the wrong code: a tools/call whose params are not {name,
 * arguments?} (-32603 and a raw schema dump), an empty batch, or valid JSON that is not a JSON-RPC
 * message (-32700, a parse error). The client's mistake, answered as JSON-RPC's own code (-32602,
 * -32600) with the reason; undefined for anything else.
 */
export function malformedRequest (body: unknown): { code: number, message: string } | undefined {
  if (Array.isArray(body) && body.length === 0) return { code: -32600, message: 'an empty batch: send at least one JSON-RPC request' }
  // valid JSON that is not a JSON-RPC message is an invalid request (-32600); the transport called it a parse error (-32700)
  const messages: unknown[] = Array.isArray(body) ? body : [body]
  // by index: the message found may itself be undefined
  const bad = messages.findIndex(m => !JSONRPCMessageSchema.safeParse(m).success)
  const notMessage = messages[bad]
  if (bad >= 0) return { code: -32600, message: `invalid request: not a JSON-RPC 2.0 message (${typeof notMessage === 'object' && notMessage !== null ? 'an object without a valid jsonrpc, method, id or params' : `a JSON ${notMessage === null ? 'null' : typeof notMessage}`})` }
  // a message from here on: a batch, or one object
  if (Array.isArray(body)) return repeatedId(body)
  const method = (body as { method?: unknown }).method
  const checked = typeof method === 'string' && Object.hasOwn(PARAMS_CHECKED, method) ? PARAMS_CHECKED[method as keyof typeof PARAMS_CHECKED] : undefined
  if (checked === undefined) return undefined
  const parsed = checked.schema.safeParse(body)
  if (parsed.success) return undefined
  const issue = parsed.error.issues[0]
  return { code: -32602, message: `invalid params: ${issue === undefined ? `${String(method)} takes ${checked.takes}` : `${issue.path.join('.')}: ${issue.message}`}` }
}

/**
 * Whether an answer should stream (SSE): only a call that asked for progress gets messages before
 * its answer. Any other is answered as one JSON body, so a node killed mid-call breaks the HTTP
 * exchange itself and the client fails the call at once; a broken event stream after its headers
 * only reached the SDK client's error handler, and the call waited out its own timeout (60 s).
 */
export function wantsStream (body: unknown): boolean {
  const messages: unknown[] = Array.isArray(body) ? body : [body]
  return messages.some(m => {
    const meta = (m as { params?: { _meta?: { progressToken?: unknown } } } | null)?.params?._meta
    return typeof meta === 'object' && meta !== null && meta.progressToken !== undefined
  })
}

/**
 * A batch whose requests share an id: the SDK ran each and answered only one per id, so a call's
 * task ran and its answer was lost. JSON-RPC answers are matched to requests by id alone.
 */
function repeatedId (batch: unknown[]): { code: number, message: string } | undefined {
  const seen = new Set<string>()
  for (const m of batch) {
    // notifications (no id) are never answered; responses are not requests
    if (typeof m !== 'object' || m === null || !('method' in m) || !('id' in m)) continue
    const id = JSON.stringify((m as { id: unknown }).id)
    if (seen.has(id)) return { code: -32600, message: `invalid request: the batch repeats the id ${id.slice(0, 100)}; give each request its own id` }
    seen.add(id)
  }
  return undefined
}

/** The requests whose params the SDK checks by throwing its schema's issues as an internal error (-32603). */
const PARAMS_CHECKED = {
  'tools/call': { schema: CallToolRequestSchema, takes: '{name, arguments?}' },
  initialize: { schema: InitializeRequestSchema, takes: '{protocolVersion, capabilities, clientInfo}' },
  'tools/list': { schema: ListToolsRequestSchema, takes: '{cursor?}' }
}

/**
 * An MCP server whose tools are the mesh's live capabilities: a call submits a task, sends
 * progress while it runs (when the client gave a progressToken) and answers with its result. A
 * call the client cancels (or whose connection closes) cancels the task: nobody waits for it.
 */
export function createMcpServer (backend: MeshBackend, init: McpServerInit): Server {
  const server = new Server({ name: 'agentmesh', version: init.version }, { capabilities: { tools: { listChanged: false } } })
  const progressIntervalMs = init.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS
  const maxCallMs = init.maxCallMs ?? DEFAULT_MAX_CALL_MS
  const withProto = new Set<string | number>()
  protoCalls.set(server, withProto)

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    return { tools: meshTools(await backend.capabilities()).map(t => t.tool) }
  })

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const { name } = request.params
    const protoKey = withProto.delete(extra.requestId)
    const found = meshTools(await backend.capabilities()).find(t => t.tool.name === name)
    if (found === undefined) {
      const err = new UnknownToolError(`unknown tool ${name}: no live peer offers it`)
      init.onRefused?.(err.message)
      throw err
    }
    if (protoKey) return toolError(`cannot submit ${name}: input is not ${JSON_VALUE_WHAT}`)
    const besides = found.wrapped ? fieldsBesideInput(request.params.arguments) : []
    // the published schema takes {input} alone (additionalProperties: false): a field beside it was dropped unseen
    if (besides.length > 0) return toolError(`invalid arguments for ${name}: only "input" is taken (the tool's input schema), not ${besides.slice(0, 10).map(k => JSON.stringify(k.slice(0, 100))).join(', ')}`)
    const input = toolInput(request.params.arguments, found.wrapped)
    // JSON.parse reads 1e309 as Infinity, which the stdio server's request to the API wrote as null
    // (a task made with other input), and a deep nesting overflowed that request's stack
    if (input !== undefined && !isJsonValue(input)) return toolError(`cannot submit ${name}: input is not ${JSON_VALUE_WHAT}`)
    // refused before a task is made that could only die of them
    const problem = inputProblem(found.inputSchema, input)
    if (problem !== undefined) return toolError(`invalid arguments for ${name}: ${problem}`)
    let id: string
    try {
      id = await backend.submit(name, input, { timeoutMs: init.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS })
    } catch (err: any) {
      return toolError(`cannot submit ${name}: ${err?.message ?? String(err)}`)
    }
    const token = extra._meta?.progressToken
    let progress = 0
    const started = Date.now()
    const notify = async (message: string): Promise<void> => {
      if (token === undefined || extra.signal.aborted) return
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: progress++, message } })
        .catch((err: Error) => init.log?.('progress for %s not sent: %s', id, err.message))
    }
    // a canceled call stops waiting at once, not at the end of the current wait; so does a stopping node's
    const canceled = whenAborted(extra.signal, undefined)
    const stopping = whenAborted(backend.stopping, STOPPING)
    await notify(`submitted as task ${id}`)
    // the agent's own progress, as it happens, between the state reports
    const unsubscribe = token === undefined ? undefined : backend.progress?.(id, event => { void notify(eventText(event)) })
    try {
      while (!extra.signal.aborted) {
        const left = started + maxCallMs - Date.now()
        if (left <= 0) return toolError(`task ${id} still unfinished after ${Math.round(maxCallMs / 1000)} s; it carries on, read it later with GET /v1/tasks/${id}/result`, id)
        const outcome = await Promise.race([backend.wait(id, Math.min(progressIntervalMs, left)), canceled.promise, stopping.promise])
        if (outcome === undefined) break
        if (outcome === STOPPING) return toolError(`the node answering this call is stopping; task ${id} carries on: read it with GET /v1/tasks/${id}/result on any node of the mesh`, id)
        if (outcome.done) return toolResult(outcome)
        await notify(`${outcome.state} (${Math.round((Date.now() - started) / 1000)} s)`)
      }
    } catch (err: any) {
      if (!extra.signal.aborted) return toolError(`task ${id}: ${err?.message ?? String(err)}`, id)
    } finally {
      unsubscribe?.()
      canceled.done()
      stopping.done()
    }
    backend.cancel(id).catch((err: Error) => init.log?.('cannot cancel abandoned task %s: %s', id, err.message))
    return toolError(`call canceled; task ${id} canceled`, id)
  })
  return server
}

const STOPPING = Symbol('stopping')

/** Resolves with `value` once `signal` aborts (never without one); `done` removes its listener. */
function whenAborted<T> (signal: AbortSignal | undefined, value: T): { promise: Promise<T>, done: () => void } {
  const { promise, resolve } = Promise.withResolvers<T>()
  const abort = (): void => { resolve(value) }
  if (signal?.aborted === true) abort()
  else signal?.addEventListener('abort', abort, { once: true })
  return { promise, done: () => { signal?.removeEventListener('abort', abort) } }
}

/** Keys of a wrapped tool's arguments other than `input`, when they have an `input` (without one, they are the input whole). */
function fieldsBesideInput (args: unknown): string[] {
  if (typeof args !== 'object' || args === null || !Object.hasOwn(args, WRAPPED_INPUT)) return []
  return Object.keys(args).filter(k => k !== WRAPPED_INPUT)
}

/** A progress event as a message: its text, its `message` (as MCP's own progress has), or its JSON. */
function eventText (event: unknown): string {
  if (typeof event === 'string') return event.slice(0, MAX_EVENT_TEXT)
  const message = (event as { message?: unknown } | null)?.message
  if (typeof message === 'string') return message.slice(0, MAX_EVENT_TEXT)
  return (JSON.stringify(event) ?? String(event)).slice(0, MAX_EVENT_TEXT)
}

/**
 * A tools/call naming no live capability: JSON-RPC -32602. Not the SDK's McpError, whose message
 * already says "MCP error -32602:", which the client's McpError then says again.
 */
export class UnknownToolError extends Error {
  static override name = 'UnknownToolError'
  readonly code = ErrorCode.InvalidParams
  constructor (message: string) {
    super(message)
    this.name = 'UnknownToolError'
  }
}
