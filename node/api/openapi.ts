import { z } from 'zod'
import { VERSION } from '../version.js'
import type { Route } from './http.js'
import type { RouteOptions } from 'fastify'

function jsonSchema (schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' })
  } catch {
    return {}
  }
}

/** The OpenAPI 3.1 document of the control API, built from the routes and their zod schemas. */
export function openApiDocument (routes: Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of routes) {
    const path = route.path.replace(/:(\w+)/g, '{$1}')
    const params = [...route.path.matchAll(/:(\w+)/g)].map(m => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }))
    const query = route.schema?.query === undefined ? [] : queryParameters(route.schema.query)
    paths[path] ??= {}
    paths[path][route.method.toLowerCase()] = {
      summary: route.summary ?? `${route.method} ${route.path}`,
      ...(params.length + query.length === 0 ? {} : { parameters: [...params, ...query] }),
      ...(route.schema?.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.schema.body) } } } }),
      responses: {
        200: { description: 'OK', content: { 'application/json': { schema: {} } } },
        default: { description: 'an error: {error: {name, message}}', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'agentmesh control API', version: VERSION },
    paths,
    components: {
      schemas: { Error: { type: 'object', properties: { error: { type: 'object', properties: { name: { type: 'string' }, message: { type: 'string' } }, required: ['name', 'message'] } }, required: ['error'] } },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }
    }
  }
}

function queryParameters (schema: z.ZodType): unknown[] {
  const json = jsonSchema(schema) as { properties?: Record<string, unknown>, required?: string[] }
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: json.required?.includes(name) ?? false, schema: s }))
}

/** GET /v1/openapi.json */
export function openApiRoute (routes: Route[]): RouteOptions {
  const doc = openApiDocument([...routes, { method: 'GET', path: '/v1/openapi.json', summary: 'this document', handle: () => ({ body: {} }) }])
  return { method: 'GET', url: '/v1/openapi.json', handler: async () => doc }
}
