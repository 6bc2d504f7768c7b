import type { BadRequestReason } from './stats.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** An error that becomes an HTTP answer: `{error: {name, message}}` with this status. */
export class HttpError extends Error {
  static override name = 'HttpError'
  readonly status: number
  readonly code: string
  /** set when the request itself was at fault: counted in `api.badRequests` */
  readonly reason?: BadRequestReason
  constructor (status: number, code: string, message: string, reason?: BadRequestReason) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
    this.reason = reason
  }
}

/** A 400 for a request at fault, with the counter it is counted under. */
export function badRequest (reason: BadRequestReason, message: string): HttpError {
  return new HttpError(400, 'BAD_REQUEST', message, reason)
}

export interface RouteContext {
  req: IncomingMessage
  params: Record<string, string>
  /** each name at most once (a repeated one is refused before any route runs) */
  query: URLSearchParams
  /** the parsed JSON body; 400 when malformed or too deep, 413 when over the limit, 415 when not JSON */
  body: () => Promise<unknown>
}

export interface Reply {
  status?: number
  body: unknown
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE'
  /** e.g. /v1/tasks/:id */
  path: string
  handle: (ctx: RouteContext) => Promise<Reply> | Reply
}

interface CompiledRoute extends Route {
  regex: RegExp
  names: string[]
}

export function compileRoutes (routes: Route[]): CompiledRoute[] {
  return routes.map(route => {
    const names: string[] = []
    const pattern = route.path.replace(/:(\w+)/g, (_, name: string) => { names.push(name); return '([^/]+)' })
    return { ...route, regex: new RegExp(`^${pattern}/?$`), names }
  })
}

function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw badRequest('bad-escape', `path segment ${JSON.stringify(segment.slice(0, 100))} has a malformed percent-escape (expected %XX forming UTF-8)`)
  }
}

export function matchRoute (routes: CompiledRoute[], method: string, path: string): { route: CompiledRoute, params: Record<string, string> } {
  let pathMatched = false
  for (const route of routes) {
    const m = route.regex.exec(path)
    if (m === null) continue
    pathMatched = true
    if (route.method !== method) continue
    const params: Record<string, string> = {}
    route.names.forEach((name, i) => { params[name] = decodeSegment(m[i + 1] ?? '') })
    return { route, params }
  }
  const shown = path.length > 200 ? `${path.slice(0, 200)}...` : path
  if (pathMatched) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${shown}`, 'bad-method')
  throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${shown}`, 'no-route')
}

/**
 * Splits a request target into its raw path and query. Not `new URL(target, base)`: that throws on
 * `//` (an empty authority) and rewrites paths (`/a/../b`), so the router would see another path
 * than the client sent.
 */
export function parseTarget (target: string): { path: string, query: URLSearchParams } {
  let rest = target
  // absolute-form (what a proxy sends): only its path and query matter here
  if (/^https?:\/\//i.test(target)) {
    let url: URL
    try {
      url = new URL(target)
    } catch {
      throw badRequest('bad-target', `request target ${JSON.stringify(target.slice(0, 100))} is not a valid URL`)
    }
    rest = url.pathname + url.search
  }
  if (!rest.startsWith('/') || rest.startsWith('//')) {
    throw badRequest('bad-target', `request target ${JSON.stringify(rest.slice(0, 100))} is not a path (expected /v1/...)`)
  }
  const hash = rest.indexOf('#')
  if (hash >= 0) rest = rest.slice(0, hash)
  const mark = rest.indexOf('?')
  const path = mark < 0 ? rest : rest.slice(0, mark)
  // URLSearchParams never throws: a malformed escape in a value stays as written
  const query = new URLSearchParams(mark < 0 ? '' : rest.slice(mark + 1))
  const seen = new Set<string>()
  for (const key of query.keys()) {
    if (seen.has(key)) throw badRequest('repeated-param', `query parameter ${JSON.stringify(key.slice(0, 100))} is given more than once`)
    seen.add(key)
  }
  return { path, query }
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
