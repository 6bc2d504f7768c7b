import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Reply =
  | { status: number, headers?: Record<string, string>, error: string, code?: string }
  /** a body sent as it is, with status 200: a malformed or cut-off reply */
  | { raw: string, contentType: string }
  | {
    content?: string
    toolCalls?: Array<{ name: string, arguments: unknown }>
    /** the tokens of a streamed answer (else the content as one) */
    stream?: string[]
    /** @default {prompt_tokens: 10, completion_tokens: 5, total_tokens: 15} */
    usage?: { prompt_tokens: number, completion_tokens: number, total_tokens: number }
    /** the answer waits for this (a streamed one after its first token): a call held while a test kills its caller */
    hold?: Promise<unknown>
  }

/**
 * A local OpenAI-compatible server for tests: POST /v1/chat/completions answers what `script`
 * says for each request (by its body and its number), JSON or server-sent events, and keeps every
 * request it saw. The real `openai` client talks to it over real HTTP.
 */
export class FakeOpenAI {
  readonly requests: any[] = []
  /** bodies of POST /v1/embeddings */
  readonly embeddingRequests: any[] = []
  private server?: Server
  private readonly script: (body: any, n: number) => Reply

  constructor (script: (body: any, n: number) => Reply) {
    this.script = script
  }

  get baseURL (): string {
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}/v1`
  }

  async start (): Promise<void> {
    this.server = createServer((req, res) => {
      let text = ''
      req.on('data', d => { text += String(d) })
      req.on('end', () => { void (async () => {
        if (req.method === 'POST' && req.url === '/v1/embeddings') {
          const body = JSON.parse(text)
          this.embeddingRequests.push(body)
          const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input]
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
            object: 'list',
            model: body.model,
            // as the real API: base64 of little-endian float32 when asked, else arrays
            data: inputs.map((t, index) => ({ object: 'embedding', index, embedding: body.encoding_format === 'base64' ? Buffer.from(Float32Array.from(fakeEmbedding(t)).buffer).toString('base64') : fakeEmbedding(t) })),
            usage: { prompt_tokens: inputs.length, total_tokens: inputs.length }
          }))
          return
        }
        if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }))
          return
        }
        const body = JSON.parse(text)
        this.requests.push(body)
        const reply = this.script(body, this.requests.length)
        if ('raw' in reply) {
          res.writeHead(200, { 'content-type': reply.contentType }).end(reply.raw)
          return
        }
        if ('status' in reply) {
          res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(JSON.stringify({ error: { message: reply.error, type: 'test', ...(reply.code === undefined ? {} : { code: reply.code }) } }))
          return
        }
        const usage = reply.usage ?? { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }
        const n = this.requests.length
        if (body.stream === true) {
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          const chunk = (delta: unknown, finish: string | null = null): string => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
          const chunks = reply.stream ?? (reply.content === undefined && reply.toolCalls !== undefined ? [] : [reply.content ?? ''])
          for (const [i, token] of chunks.entries()) {
            res.write(chunk(i === 0 ? { role: 'assistant', content: token } : { content: token }))
            if (i === 0 && reply.hold !== undefined) await reply.hold
          }
          // each tool call in pieces, as real servers send them: id and name first, then the arguments in two parts
          for (const [index, c] of (reply.toolCalls ?? []).entries()) {
            const args = JSON.stringify(c.arguments)
            const half = Math.floor(args.length / 2)
            res.write(chunk({ tool_calls: [{ index, id: `call_${n}_${index}`, type: 'function', function: { name: c.name, arguments: '' } }] }))
            res.write(chunk({ tool_calls: [{ index, function: { arguments: args.slice(0, half) } }] }))
            res.write(chunk({ tool_calls: [{ index, function: { arguments: args.slice(half) } }] }))
          }
          res.write(chunk({}, (reply.toolCalls ?? []).length > 0 ? 'tool_calls' : 'stop'))
          res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [], usage })}\n\n`)
          res.end('data: [DONE]\n\n')
          return
        }
        if (reply.hold !== undefined) await reply.hold
        const toolCalls = (reply.toolCalls ?? []).map((c, i) => ({ id: `call_${n}_${i}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } }))
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          id: 'x',
          object: 'chat.completion',
          created: 1,
          model: body.model,
          choices: [{ index: 0, finish_reason: toolCalls.length > 0 ? 'tool_calls' : 'stop', message: { role: 'assistant', content: reply.content ?? null, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) } }],
          usage
        }))
      })().catch(() => { res.destroy() }) })
    })
    await new Promise<void>(resolve => this.server?.listen(0, '127.0.0.1', resolve))
  }

  async stop (): Promise<void> {
    this.server?.closeAllConnections()
    await new Promise<void>(resolve => { this.server?.close(() => { resolve() }) ?? resolve() })
  }
}

/** Dimensions of the fake embeddings. */
export const FAKE_EMBEDDING_DIMS = 64

/**
 * A deterministic embedding: each word adds to a few dimensions chosen by its hash, so texts that
 * share words are near in cosine, and the same text always gives the same vector.
 */
export function fakeEmbedding (text: string): number[] {
  const v = new Array<number>(FAKE_EMBEDDING_DIMS).fill(0)
  for (const word of text.toLowerCase().split(/[^a-z0-9]+/).filter(w => w !== '')) {
    let h = 2166136261
    for (const ch of word) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0
    for (let i = 0; i < 3; i++) v[(h >>> (i * 8)) % FAKE_EMBEDDING_DIMS]! += 1
  }
  return v
}
