import type { IncomingMessage, ServerResponse } from 'node:http'

/** An error that becomes an HTTP answer: `{error: {name, message}}` with this status. */
export class HttpError extends Error {
  static override name = 'HttpError'
  readonly status: number
  readonly code: string
  constructor (status: number, code: string, message: string) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
  }
}

export interface RouteContext {
  req: IncomingMessage
  params: Record<string, string>
  query: URLSearchParams
  /** the parsed JSON body; 400 when malformed, 413 when over the limit */
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

export function matchRoute (routes: CompiledRoute[], method: string, path: string): { route: CompiledRoute, params: Record<string, string> } {
  let pathMatched = false
  for (const route of routes) {
    const m = route.regex.exec(path)
    if (m === null) continue
    pathMatched = true
    if (route.method !== method) continue
    const params: Record<string, string> = {}
    route.names.forEach((name, i) => { params[name] = decodeURIComponent(m[i + 1] ?? '') })
    return { route, params }
  }
  if (pathMatched) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`)
  throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${path}`)
}

export async function readJsonBody (req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > maxBytes) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${maxBytes}`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `body exceeds the limit of ${maxBytes} bytes`)
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw new HttpError(400, 'BAD_REQUEST', 'expected a JSON body')
  try {
    return JSON.parse(text)
  } catch (err: any) {
    throw new HttpError(400, 'BAD_REQUEST', `body is not valid JSON: ${err.message}`)
  }
}

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
