import { z } from 'zod'
import { VERSION } from '../version.js'
import { CAPABILITY } from '../../protocols/task/index.js'
import { STREAMED_STATES } from './mesh-events-route.js'
import type { Route } from './http.js'
import type { RouteOptions } from 'fastify'

/** Shared definitions zod made ($defs: recursive JSON, reused parts), hoisted into components.schemas. */
type Defs = Record<string, unknown>

function jsonSchema (schema: z.ZodType, defs: Defs, prefix: string): unknown {
  try {
    const { $defs, $schema: _s, ...root } = z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown> & { $defs?: Record<string, unknown> }
    if ($defs === undefined) return root
    // "#/$defs/x" would point nowhere inside this document: each becomes a component of its own
    const rename = (name: string): string => `${prefix}${name.replace(/[^A-Za-z0-9._-]/g, '_')}`
    for (const [name, def] of Object.entries($defs)) defs[rename(name)] = rewrite(def, rename)
    return rewrite(root, rename)
  } catch {
    return {}
  }
}

function rewrite (node: unknown, rename: (name: string) => string): unknown {
  if (Array.isArray(node)) return node.map(n => rewrite(n, rename))
  if (node === null || typeof node !== 'object') return node
  return Object.fromEntries(Object.entries(node).map(([k, v]) =>
    k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')
      ? [k, `#/components/schemas/${rename(v.slice('#/$defs/'.length))}`]
      : [k, rewrite(v, rename)]))
}

/** A route that answers other than JSON (served by Fastify directly, not a Route): an event stream, a page, metrics. */
export interface StreamDoc {
  path: string
  summary: string
  /** query parameters: name, what it does and the values it takes (any string when none are named) */
  query?: Record<string, { description: string, enum?: readonly string[], pattern?: string }>
  /** @default 'text/event-stream' */
  contentType?: string
  /** served without the token (the dashboard's page: it asks for the token itself) */
  public?: boolean
}

/** The routes that answer other than JSON, in the document beside the JSON ones. */
export const STREAM_DOCS: StreamDoc[] = [
  { path: '/v1/tasks/:id/events', summary: 'one task\'s events as Server-Sent Events: its submit, each claim and how it ended, progress and tokens (on the node it was submitted through), the outcome; ends after the outcome; Last-Event-ID resumes' },
  { path: '/v1/events', summary: 'the mesh\'s task events as they happen, as Server-Sent Events (not a replay)', query: { capability: { description: 'only tasks of this capability (empty: no filter)', pattern: `^$|${CAPABILITY.source}` }, state: { description: 'only changes to this state (empty: no filter)', enum: [...STREAMED_STATES, ''] } } },
  { path: '/metrics', summary: 'the node\'s counters, gauges and histograms in Prometheus text format', contentType: 'text/plain' },
  { path: '/ui', summary: 'the dashboard (a page for a browser)', contentType: 'text/html', public: true }
]

/** The OpenAPI 3.1 document of the control API, built from the routes and their zod schemas. */
export function openApiDocument (routes: Route[], streams: StreamDoc[] = []): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  const defs: Defs = {}
  for (const [i, route] of routes.entries()) {
    const prefix = `r${i}_`
    const path = route.path.replace(/:(\w+)/g, '{$1}')
    const params = [...route.path.matchAll(/:(\w+)/g)].map(m => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }))
    const query = route.schema?.query === undefined ? [] : queryParameters(route.schema.query, defs, prefix)
    paths[path] ??= {}
    paths[path][route.method.toLowerCase()] = {
      summary: route.summary ?? `${route.method} ${route.path}`,
      ...(params.length + query.length === 0 ? {} : { parameters: [...params, ...query] }),
      ...(route.schema?.body === undefined ? {} : { requestBody: { required: route.schema.bodyOptional !== true, content: { 'application/json': { schema: jsonSchema(route.schema.body, defs, prefix) } } } }),
      responses: {
        [route.status ?? 200]: { description: route.status === 202 ? 'accepted' : 'OK', content: { 'application/json': { schema: {} } } },
        ...Object.fromEntries(Object.entries(route.otherStatuses ?? {}).map(([status, description]) => [status, { description, content: { 'application/json': { schema: {} } } }])),
        ...Object.fromEntries(Object.entries(joined(commonErrors(route), route.errorStatuses ?? {})).map(([status, description]) => [status, errorAnswer(description)])),
        default: errorAnswer('another error')
      }
    }
  }
  for (const stream of streams) {
    const path = stream.path.replace(/:(\w+)/g, '{$1}')
    const params = [...stream.path.matchAll(/:(\w+)/g)].map(m => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }))
    const query = Object.entries(stream.query ?? {}).map(([name, q]) => ({ name, in: 'query', required: false, description: q.description, schema: { type: 'string', ...(q.enum === undefined ? {} : { enum: q.enum }), ...(q.pattern === undefined ? {} : { pattern: q.pattern }) } }))
    paths[path] ??= {}
    paths[path].get = {
      summary: stream.summary,
      ...(stream.public === true ? { security: [] } : {}),
      ...(params.length + query.length === 0 ? {} : { parameters: [...params, ...query] }),
      responses: {
        200: { description: stream.contentType === undefined ? 'a stream of events' : 'OK', content: { [stream.contentType ?? 'text/event-stream']: { schema: { type: 'string' } } } },
        ...(stream.public === true ? {} : { 401: errorAnswer(UNAUTHORIZED) }),
        503: errorAnswer(STOPPING),
        default: errorAnswer('another error')
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'agentmesh control API', version: VERSION },
    paths,
    // required when the API has a token (always off loopback); without one the header is ignored
    security: [{ bearer: [] }],
    components: {
      schemas: { ...defs, Error: { type: 'object', properties: { error: { type: 'object', properties: { name: { type: 'string' }, message: { type: 'string' } }, required: ['name', 'message'] } }, required: ['error'] } },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }
    }
  }
}

const UNAUTHORIZED = 'UNAUTHORIZED: the API has a token and the request did not carry it (Authorization: Bearer)'
const STOPPING = 'NODE_STOPPING: the node is stopping (Retry-After), send the request to another member; STORE_FAILED: this node\'s store failed a write (a full disk; Retry-After)'

/** Each status's descriptions: a route's own first, then its shape's. */
function joined (common: Record<string, string>, own: Record<string, string>): Record<string, string> {
  const out = { ...common }
  for (const [status, description] of Object.entries(own)) out[status] = [description, common[status]].filter(d => d !== undefined).join('; ')
  return out
}

/** An error answer's entry: {error: {name, message}}. */
function errorAnswer (description: string): Record<string, unknown> {
  return { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
}

/** The error statuses every route of this shape answers; a route's own (Route.errorStatuses) are listed with them (joined). */
function commonErrors (route: Route): Record<number, string> {
  const body = route.schema?.body !== undefined
  const params = route.path.includes('/:')
  const errors: Record<number, string> = {
    400: `BAD_REQUEST: ${['a query parameter it does not take', ...(params ? ['a malformed id'] : []), ...(body ? ['a malformed body'] : [])].join(', or ')}`,
    401: UNAUTHORIZED,
    503: STOPPING
  }
  if (params) errors[404] = 'NOT_FOUND: what the path names does not exist (a task: neither here nor on a majority of its placement)'
  if (body) {
    errors[413] = 'PAYLOAD_TOO_LARGE: the body is over the limit'
    errors[415] = 'UNSUPPORTED_MEDIA_TYPE: a body that is not JSON in UTF-8'
  }
  return errors
}

function queryParameters (schema: z.ZodType, defs: Defs, prefix: string): unknown[] {
  const json = jsonSchema(schema, defs, prefix) as { properties?: Record<string, unknown>, required?: string[] }
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: json.required?.includes(name) ?? false, schema: s }))
}

/** GET /v1/openapi.json */
export function openApiRoute (routes: Route[]): RouteOptions {
  const doc = openApiDocument([...routes, { method: 'GET', path: '/v1/openapi.json', summary: 'this document', handle: () => ({ body: {} }) }], STREAM_DOCS)
  return { method: 'GET', url: '/v1/openapi.json', handler: async () => doc }
}
