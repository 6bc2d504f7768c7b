import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../package-root.js'
import type { RouteOptions } from 'fastify'

/** The dashboard's files, shipped in the package: nothing comes from a CDN or the network. */
const UI_DIR = join(PACKAGE_ROOT, 'node', 'api', 'ui')
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8'
}

/** Paths the token check lets through: the dashboard's static files hold no data (its API calls carry the token). */
export function isUiAsset (url: string | undefined): boolean {
  const path = (url ?? '').split('?')[0] ?? ''
  return path === '/ui' || path === '/ui/' || (path.startsWith('/ui/') && Object.hasOwn(FILES, path.slice(4)))
}

/** GET /ui and its files. */
export function uiRoutes (): RouteOptions[] {
  const serve = (name: string): RouteOptions['handler'] => async (_request, reply) => {
    const body = await readFile(join(UI_DIR, name))
    return reply.type(FILES[name] as string).header('cache-control', 'no-cache').header('content-security-policy', "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'").send(body)
  }
  return [
    { method: 'GET', url: '/ui', handler: serve('index.html') },
    ...Object.keys(FILES).map(name => ({ method: 'GET' as const, url: `/ui/${name}`, handler: serve(name) }))
  ]
}
