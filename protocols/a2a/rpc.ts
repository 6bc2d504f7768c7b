import { isLegacyJsonRpcMethod, isV1JsonRpcMethod } from '@a2a-js/sdk/compat/v0_3'
import { INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND } from './json-rpc.js'
import type { RpcError, RpcId } from './json-rpc.js'

/** A request that may go to a transport handler: which one is told by its method's name. */
export type Envelope =
  | { ok: true, id: RpcId, method: string, legacy: boolean }
  | { ok: false, id: RpcId, error: RpcError }

/**
 * Checks the JSON-RPC envelope before the SDK sees it, so that each fault gets JSON-RPC's own
 * code (the SDK's handlers answer -32602 to a request that is not JSON-RPC at all). A method is
 * A2A 0.3's (`message/send`) or 1.0's (`SendMessage`) by its name, whatever the version header.
 */
export function checkEnvelope (body: unknown): Envelope {
  if (Array.isArray(body)) return fault(null, INVALID_REQUEST, 'batch requests are not supported: send one request per POST')
  if (typeof body !== 'object' || body === null) return fault(null, INVALID_REQUEST, 'the body must be a JSON-RPC 2.0 request object')
  const req = body as Record<string, unknown>
  const id = req.id
  const validId = id === undefined || id === null || typeof id === 'string' || Number.isInteger(id)
  if (!validId) return fault(null, INVALID_REQUEST, 'id must be a string, an integer or null')
  const rpcId = (id ?? null) as RpcId
  if (req.jsonrpc !== '2.0') return fault(rpcId, INVALID_REQUEST, 'jsonrpc must be "2.0"')
  const method = req.method
  if (typeof method !== 'string' || method === '') return fault(rpcId, INVALID_REQUEST, 'method must be a non-empty string')
  // the SDK's checks look names up with `in`: "constructor" or "__proto__" would pass as a method
  if (method in Object.prototype) return notFound(rpcId, method)
  const legacy = isLegacyJsonRpcMethod(method)
  if (!legacy && !isV1JsonRpcMethod(method)) return notFound(rpcId, method)
  const params = req.params as Record<string, unknown> | undefined
  const part = badPart(params)
  if (part !== undefined) return fault(rpcId, INVALID_PARAMS, `params.message.parts[${part}] must be an object (a text, data or file part)`)
  const field = badPartField(params, legacy)
  if (field !== undefined) return fault(rpcId, INVALID_PARAMS, `params.message.parts[${field.index}].${field.problem}`)
  const waitFlag = badWaitFlag(params)
  if (waitFlag !== undefined) return fault(rpcId, INVALID_PARAMS, `params.configuration.${waitFlag} must be true or false`)
  if (legacy) return { ok: true, id: rpcId, method, legacy: true }
  // 1.0's wire reads params as protobuf JSON, which makes a number a string: {id: 5} was looked up as task "5"
  if (TASK_ID_METHODS.has(method) && typeof params === 'object' && params !== null && 'id' in params && typeof params.id !== 'string') {
    return fault(rpcId, INVALID_PARAMS, 'params.id must be a string (a mesh task id)')
  }
  return { ok: true, id: rpcId, method, legacy: false }
}

/** params.message.parts, when it is an array. */
function messageParts (params: Record<string, unknown> | undefined): unknown[] | undefined {
  const message = typeof params === 'object' && params !== null ? params.message : undefined
  const parts = typeof message === 'object' && message !== null ? (message as Record<string, unknown>).parts : undefined
  return Array.isArray(parts) ? parts : undefined
}

/** The index of a message part that is not an object: 1.0's conversion read `null.text` (-32603). */
function badPart (params: Record<string, unknown> | undefined): number | undefined {
  const parts = messageParts(params)
  if (parts === undefined) return undefined
  const i = parts.findIndex(p => typeof p !== 'object' || p === null || Array.isArray(p))
  return i < 0 ? undefined : i
}

/**
 * A text part whose `text` is not a string (either wire), or a 0.3 data part whose `data` is not an
 * object: the SDK's conversion made 5 the text "5", and a missing text "", and the task ran on it.
 */
function badPartField (params: Record<string, unknown> | undefined, legacy: boolean): { index: number, problem: string } | undefined {
  const parts = messageParts(params)
  if (parts === undefined) return undefined
  for (const [index, p] of (parts as Array<Record<string, unknown>>).entries()) {
    // 0.3 tells parts by kind; 1.0's JSON by field, where null is a field not set
    const text = legacy ? p.kind === 'text' : p.text !== undefined && p.text !== null
    if (text && typeof p.text !== 'string') return { index, problem: 'text must be a string' }
    if (legacy && p.kind === 'data' && (typeof p.data !== 'object' || p.data === null || Array.isArray(p.data))) return { index, problem: 'data must be an object' }
  }
  return undefined
}

/** A send's `blocking` (0.3) or `returnImmediately` (1.0) that is there and not a boolean: "no" was read as true. */
function badWaitFlag (params: Record<string, unknown> | undefined): string | undefined {
  const configuration = typeof params === 'object' && params !== null ? params.configuration : undefined
  if (typeof configuration !== 'object' || configuration === null) return undefined
  const c = configuration as Record<string, unknown>
  return ['blocking', 'returnImmediately'].find(flag => c[flag] !== undefined && c[flag] !== null && typeof c[flag] !== 'boolean')
}

/** A2A 1.0's methods that name a task by `params.id`. */
const TASK_ID_METHODS = new Set(['GetTask', 'CancelTask', 'SubscribeToTask'])

function notFound (id: RpcId, method: string): Envelope {
  return fault(id, METHOD_NOT_FOUND, `method "${method.slice(0, 100)}" not found: this endpoint speaks A2A over JSON-RPC (message/send, message/stream, tasks/get, tasks/cancel, or A2A 1.0's SendMessage, ...)`)
}

function fault (id: RpcId, code: number, message: string): Envelope {
  return { ok: false, id, error: { code, message } }
}
