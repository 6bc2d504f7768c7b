import { HttpError, badRequest } from './http.js'
import type { IncomingMessage } from 'node:http'

export interface BodyLimits {
  /** larger bodies get 413 */
  maxBytes: number
  /** deeper nesting of arrays and objects gets 400 */
  maxDepth: number
}

/** application/json, or any `+json` type; parameters such as charset are allowed. */
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i

/**
 * Whether JSON text nests arrays and objects deeper than `limit`. A loop over the characters, not
 * recursion, and run before JSON.parse: parsing is not the danger, but every recursive walk after
 * it (the schema check, hashing, copies) would overflow the stack on `[[[[...]]]]` 10,000 deep.
 */
export function jsonDeeperThan (text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: the next character is escaped, even a quote
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}

/** Reads and parses a JSON request body within the limits, or throws the HttpError to answer with. */
export async function readJsonBody (req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  const type = req.headers['content-type']
  // required, not assumed: a web page may send a text/plain, form or untyped body to 127.0.0.1
  // without asking first, while a JSON type makes the browser ask (CORS), which this server never allows
  if (type === undefined || !JSON_TYPE.test(type)) {
    const given = type === undefined ? 'no content-type' : `content-type ${JSON.stringify(type.slice(0, 100))}`
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `${given}: send the body as application/json`, 'unsupported-media-type')
  }
  const encoding = req.headers['content-encoding']
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `content-encoding ${JSON.stringify(encoding.slice(0, 100))} is not supported; send the body uncompressed`, 'unsupported-media-type')
  }
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limits.maxBytes) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${limits.maxBytes}`, 'body-too-large')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limits.maxBytes) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `body exceeds the limit of ${limits.maxBytes} bytes`, 'body-too-large')
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw badRequest('not-json', 'expected a JSON body')
  if (jsonDeeperThan(text, limits.maxDepth)) throw badRequest('too-deep', `body nests arrays and objects deeper than ${limits.maxDepth} levels`)
  try {
    return JSON.parse(text)
  } catch (err: any) {
    throw badRequest('not-json', `body is not valid JSON: ${String(err.message).slice(0, 200)}`)
  }
}
