import { connect } from 'node:net'
import { expect } from 'vitest'

export interface RawAnswer { status: number, head: string, body: string }

/**
 * Sends bytes as they are on a fresh TCP connection and reads until the server closes it (every
 * request says `Connection: close`):
 * fetch would normalize `//`, `%zz` and bad methods away before they reached the server.
 */
export async function raw (port: number, request: string | Buffer | string[], timeoutMs = 10_000): Promise<RawAnswer> {
  return await new Promise((resolve, reject) => {
    // write, not end: Node's server drops a request still in progress when the client half-closes;
    // pieces are written one turn apart, so the server reads them apart
    const pieces = Array.isArray(request) ? request : [request]
    const socket = connect(port, '127.0.0.1', () => { void (async () => { for (const piece of pieces) { socket.write(piece); await new Promise(resolve => setTimeout(resolve, 20)) } })() })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer in ${timeoutMs} ms to ${JSON.stringify(String(request).slice(0, 200))}`)) }, timeoutMs)
    socket.on('data', (d: Buffer) => chunks.push(d))
    // a reset after the answer arrived (the server closes on a bad request) is not a failure
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      // an interim `100 Continue` (for Expect: 100-continue) precedes the real answer
      const text = Buffer.concat(chunks).toString('utf8').replace(/^(?:HTTP\/1\.1 1\d\d [^\r]*\r\n\r\n)+/, '')
      const split = text.indexOf('\r\n\r\n')
      const head = split < 0 ? text : text.slice(0, split)
      const status = Number(/^HTTP\/1\.[01] (\d{3}) /.exec(head)?.[1] ?? 0)
      resolve({ status, head, body: split < 0 ? '' : text.slice(split + 4) })
    })
  })
}

/** A request line and headers; `Connection: close` so the server ends the exchange. */
export function request (method: string, target: string, headers: Record<string, string> = {}, body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  if (body !== '') lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  return `${lines.join('\r\n')}\r\n\r\n${body}`
}

/** Every refusal is JSON `{error: {name, message}}`; returns it. */
export function errorOf (answer: RawAnswer): { name: string, message: string } {
  let parsed: any
  try {
    parsed = JSON.parse(answer.body)
  } catch {
    throw new Error(`answer is not JSON: ${JSON.stringify(answer.head + '\r\n\r\n' + answer.body)}`)
  }
  expect(typeof parsed?.error?.name).toBe('string')
  expect(typeof parsed?.error?.message).toBe('string')
  expect(parsed.error.message.length).toBeGreaterThan(5)
  return parsed.error
}
