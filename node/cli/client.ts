import { join } from 'node:path'
import { DEFAULT_API, DEFAULT_DATA_DIR, FETCH_BLOCKED_PORTS } from '../daemon/config.js'
import { NODE_FILE, readNodeFile } from '../daemon/node-file.js'
import { apiTokenFromEnv, readApiToken } from '../api/auth.js'
import { NODE_HEADER } from '../api/http.js'
import { MAX_TIMER_MS } from '../tasks/options.js'
import { InvalidConfigError, NodeNotRunningError } from '../errors.js'
import { shortId } from './output.js'
import { envValue } from '../env.js'

export class ApiRequestError extends Error {
  static override name = 'ApiRequestError'
  readonly status: number
  /** the node's Retry-After (a 429 or 503), in milliseconds */
  readonly retryAfterMs?: number
  /** the node's answer (`{error: {name, message}}`), which `--json` prints */
  readonly body?: unknown
  constructor (status: number, message: string, retryAfterMs?: number, body?: unknown) {
    super(message)
    this.name = 'ApiRequestError'
    this.status = status
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs
    if (body !== undefined) this.body = body
  }
}

export interface ClientTarget {
  api?: string
  data?: string
  apiTokenFile?: string
}

let token: string | undefined

/** The bearer token the client sends (from --api-token-file, else AGENTMESH_API_TOKEN). */
export async function useApiToken (file: string | undefined): Promise<void> {
  token = await readApiToken(file)
}

/** The Authorization header for the API, when a token is known. */
export function authHeaders (): Record<string, string> {
  const t = token ?? apiTokenFromEnv()
  return t === undefined ? {} : { authorization: `Bearer ${t}` }
}

/**
 * The API URL from --api, else from DIR/node.json (--data, else AGENTMESH_DATA), else
 * AGENTMESH_API, else from the default data dir's node.json, else the default address.
 */
export async function resolveApiUrl (target: ClientTarget): Promise<string> {
  if (target.api !== undefined) return normalize(target.api)
  // an empty variable is unset, as for the daemon: a compose file's ${DIR} with DIR unset gives one
  const dataDir = target.data ?? envValue(process.env, 'AGENTMESH_DATA')
  if (dataDir !== undefined) {
    try {
      return (await readNodeFile(dataDir)).api
    } catch (err: any) {
      if (err?.name === 'MalformedNodeFileError') throw err
      throw new NodeNotRunningError(`no node is running on data dir ${dataDir} (no readable ${join(dataDir, NODE_FILE)})`)
    }
  }
  // a variable the user set wins over a daemon that happens to run on the default data dir; but it is
  // also the daemon's own bind address, and port 0 there ("any free one") names no node to reach
  const fromEnv = envValue(process.env, 'AGENTMESH_API')
  if (fromEnv !== undefined && !/:0$/.test(fromEnv.trim())) return normalize(fromEnv, 'AGENTMESH_API')
  const fromDefault = await readNodeFile(DEFAULT_DATA_DIR).catch((err: Error) => { if (err.name === 'MalformedNodeFileError') throw err })
  return fromDefault?.api ?? normalize(DEFAULT_API, 'the default API address')
}

/** An http(s) URL of a node's API, or HOST:PORT for one; anything else is the user's to fix, named by where it came from. */
function normalize (api: string, from = '--api'): string {
  const given = api.trim()
  const refuse = (): never => { throw new InvalidConfigError(`${from} ${JSON.stringify(api.slice(0, 200))} is not an http(s) URL or HOST:PORT of a node's API`) }
  // another scheme, or a scheme with one slash (http:/host), would become a host name below
  if (/^[a-z][a-z0-9+.-]*:\//i.test(given) && !/^https?:\/\//i.test(given)) refuse()
  let url: URL
  try {
    url = new URL(/^https?:\/\//i.test(given) ? given : `http://${given}`)
  } catch {
    return refuse()
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') refuse()
  // fetch would fail with "bad port", which read as no node answering there
  if (url.port !== '' && FETCH_BLOCKED_PORTS.has(Number(url.port))) throw new InvalidConfigError(`${from} ${JSON.stringify(api.slice(0, 200))}: port ${url.port} is one that fetch refuses to connect to, so no client can reach an API there: run the node's API on another port (--api on \`agentmesh node\`, e.g. 127.0.0.1:7070)`)
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '')
}

/** A JSON request to the control API; a refused connection or an error answer becomes one clear error. */
export async function apiRequest<T = any> (baseUrl: string, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  const unanswered = (err: any): NodeNotRunningError => {
    // a stopped process (SIGSTOP) or a wedged one still takes connections: it is there, and silent
    if (err?.name === 'TimeoutError') return new NodeNotRunningError(`the node at ${baseUrl} took the connection but did not answer ${method} ${path} in ${timeoutMs / 1000} s: is its process stopped or overloaded?`)
    const cause = err?.cause?.code ?? err?.cause?.message ?? err?.message
    // an https:// address of a node's plain-HTTP API: something answered, in no TLS
    if (baseUrl.startsWith('https:') && /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST|wrong version number/i.test(String(cause))) return new NodeNotRunningError(`the server at ${baseUrl} does not speak TLS (${cause}): a node's API is plain HTTP, use http://${baseUrl.slice('https://'.length)} (or put TLS in front of it)`)
    return new NodeNotRunningError(`no node answers at ${baseUrl} (${cause}); is the daemon running?`)
  }
  // read before the request: a blank token variable is its own error, not a node that does not answer
  const headers = { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }
  let res: Response
  try {
    res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // a longer timeout overflows Node's timers and fires at once
      signal: AbortSignal.timeout(Math.min(timeoutMs, MAX_TIMER_MS))
    })
  } catch (err: any) {
    throw unanswered(err)
  }
  refuseOtherServer(res, baseUrl, `${method} ${path}`)
  // the body is read under the same timeout: a node stopped mid-answer fails here
  const text = await res.text().catch((err: any) => { throw unanswered(err) })
  let parsed: any
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ApiRequestError(res.status, `${method} ${path}: answer is not JSON (HTTP ${res.status})`)
  }
  const retryAfterS = Number(res.headers.get('retry-after') ?? NaN)
  // the routes are under /v1 already: an address given with it asked for /v1/v1/..., which reads as no such route
  const hint = res.status === 404 && /\/v1$/.test(baseUrl) && String(parsed?.error?.message ?? '').startsWith('no route') ? ` (the address ${baseUrl} ends in /v1, which every route has already: give it without)` : ''
  if (!res.ok) throw new ApiRequestError(res.status, `${method} ${path}: ${parsed?.error?.message ?? `HTTP ${res.status}`}${hint}`, Number.isFinite(retryAfterS) && retryAfterS >= 0 ? retryAfterS * 1000 : undefined, parsed)
  return parsed as T
}

/**
 * Another server at the address (a mistyped port) answered JSON of its own, which printed as
 * undefined: an answer without the API's header is refused, its body left unread.
 */
export function refuseOtherServer (res: Response, baseUrl: string, request: string): void {
  if (res.headers.get(NODE_HEADER) !== null) return
  void res.body?.cancel().catch(() => {})
  throw new ApiRequestError(res.status, `the server at ${baseUrl} is not an agentmesh node (its HTTP ${res.status} answer to ${request} has no ${NODE_HEADER} header; or it is a node older than this CLI): check --api or --data`)
}

/**
 * A task id from what the user typed: the full 64 hex digits, or a unique prefix of at least 4
 * (as git takes short hashes), looked up among the tasks the node holds.
 */
export async function resolveTaskId (baseUrl: string, given: string): Promise<string> {
  const id = given.trim().toLowerCase()
  if (/^[0-9a-f]{64}$/.test(id)) return id
  if (!/^[0-9a-f]{4,63}$/.test(id)) throw new InvalidConfigError(`"${given}" is not a task id: give its 64 hex digits or a unique prefix of at least 4`)
  const { tasks } = await apiRequest<{ tasks: Array<{ id: string, capability: string }> }>(baseUrl, 'GET', `/v1/tasks?idPrefix=${id}&limit=5`)
  if (tasks.length === 1) return (tasks[0] as { id: string }).id
  if (tasks.length === 0) throw new InvalidConfigError(`no task starting with ${id} on this node (a node lists the tasks it holds; give the full id to ask the mesh)`)
  throw new InvalidConfigError(`${id} is ambiguous: ${tasks.map(t => `${shortId(t.id)} (${t.capability})`).join(', ')}${tasks.length === 5 ? ', ...' : ''}`)
}
