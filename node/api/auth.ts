import { timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { InvalidConfigError } from '../errors.js'
import { envValue } from '../env.js'
import { HttpError } from './http.js'
import type { ApiStats } from './stats.js'
import type { FastifyRequest } from 'fastify'

/** A shorter token could be guessed. */
export const MIN_TOKEN_LENGTH = 16

/** Whether an API bound to `host` is reachable from other machines (so it must have a token). */
export function requiresToken (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1') return false
  if (isIP(h) === 4) return !h.startsWith('127.')
  return true
}

function sameToken (given: string, token: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  // compared in constant time: a token must not leak one byte at a time through answer times
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * The bearer-token check of every route (ours and every door's). OpenAI's and A2A's clients send
 * `Authorization: Bearer`; MCP's too when configured with a header.
 */
export function authHook (token: string, stats: ApiStats): (request: FastifyRequest) => Promise<void> {
  return async request => {
    const header = request.headers.authorization
    const given = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim()
    if (given !== undefined && sameToken(given, token)) return
    stats.unauthorized++
    const why = header === undefined
      ? 'this API needs a bearer token (Authorization: Bearer <token>)'
      : given === undefined ? 'the Authorization header is not a bearer token: send Authorization: Bearer <token>' : 'the bearer token is wrong'
    throw new HttpError(401, 'UNAUTHORIZED', why)
  }
}

/** The API token: the file's first line when a file is named, else AGENTMESH_API_TOKEN, else none. */
export async function readApiToken (file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (file === undefined) {
    const token = apiTokenFromEnv(env)
    if (token === undefined) return undefined
    if (token.length < MIN_TOKEN_LENGTH) throw new InvalidConfigError(`AGENTMESH_API_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters`)
    return token
  }
  if (file === '') throw new InvalidConfigError('--api-token-file names no file')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    throw new InvalidConfigError(`cannot read --api-token-file ${file}: ${err.code ?? err.message}`)
  }
  const token = text.split('\n')[0]?.trim() ?? ''
  if (token.length < MIN_TOKEN_LENGTH) throw new InvalidConfigError(`--api-token-file ${file}: the token must be at least ${MIN_TOKEN_LENGTH} characters`)
  return token
}

/** Whether a Host header names this machine by a loopback name or address (any port). */
export function isLoopbackHost (host: string | undefined): boolean {
  if (host === undefined) return true
  // a host name is case-insensitive, and may end in the root's dot
  const name = (host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '')).toLowerCase().replace(/\.$/, '')
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
}

/**
 * The host a request names: an absolute-form target's authority (what a proxy sends), which RFC
 * 9112 says stands in for the Host header, else the Host header.
 */
export function requestHost (target: string | undefined, host: string | undefined): string | undefined {
  if (target === undefined || target.startsWith('/') || !/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return host
  const authority = target.slice(target.indexOf('//') + 2).split(/[/?#]/, 1)[0] ?? ''
  // user info is no part of the host
  return authority.slice(authority.lastIndexOf('@') + 1)
}

/** AGENTMESH_API_TOKEN, trimmed; undefined when unset or empty; InvalidConfigError when it holds only blanks. */
export function apiTokenFromEnv (env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = envValue(env, 'AGENTMESH_API_TOKEN')
  if (raw === undefined) return undefined
  const token = raw.trim()
  // a secret that came out blank (a template's placeholder, a missing secret): read as none, it left the API open
  if (token === '') throw new InvalidConfigError('AGENTMESH_API_TOKEN is set but blank: give the token, or unset it')
  return token
}
