import { STATUS_CODES } from 'node:http'
import { NODE_HEADER, sendJson } from './http.js'
import { OPENAI_DOOR_PATH } from './fastify-glue.js'
import { OpenAIError } from '../../protocols/openai/errors.js'
import { VERSION } from '../version.js'
import type { ApiStats } from './stats.js'
import type { ConnectionTurns } from './connection-turns.js'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/** A whole HTTP answer for a socket that has no ServerResponse (parse errors, CONNECT). */
function rawAnswer (status: number, name: string, message: string): string {
  const body = JSON.stringify({ error: { name, message } })
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${NODE_HEADER}: ${VERSION}\r\nconnection: close\r\n\r\n${body}`
}

/** A refusal written on the socket itself: an error answer that no ServerResponse counts. */
function refuseSocket (socket: Duplex, status: number, name: string, message: string, stats: ApiStats): void {
  stats.errors++
  refused.add(socket)
  socket.end(rawAnswer(status, name, message), () => { socket.destroy() })
}

/** Sockets on which the server wrote its own refusal. */
const refused = new WeakSet<Duplex>()

/** Whether the server wrote a refusal on this socket itself (a 408, 400 or 431): its request's abort is no client gone, and the refusal is its error. */
export function refusedByServer (socket: unknown): boolean {
  return refused.has(socket as Duplex)
}

/**
 * Fastify's `clientErrorHandler`: bytes the HTTP parser refuses, oversized headers and timeouts
 * get a JSON answer, counted like any bad request.
 */
export function handleClientError (err: NodeJS.ErrnoException, socket: Duplex, stats: ApiStats): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  // a parser that failed fails again on every chunk after: the first error decides
  if (refusing.has(socket)) return
  refusing.add(socket)
  refuseAfterAnswers(err, socket, stats)
}

/** Sockets whose bad bytes are being refused, once the answers before them are out. */
const refusing = new WeakSet<Duplex>()

/**
 * Bad bytes pipelined after whole good requests: their answers first, each in turn, then the
 * refusal (written at once, the refusal had ended the socket under them, and they were lost). A
 * request whose own body is late (a timeout) is refused at once, as its answer would wait for that
 * body; or the socket is closed, if that answer has begun: more bytes would corrupt it.
 */
function refuseAfterAnswers (err: NodeJS.ErrnoException, socket: Duplex, stats: ApiStats): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined
  if (inFlight !== undefined && !inFlight.writableFinished && inFlight.req?.complete === true) {
    let next = true
    const then = (): void => {
      if (!next) return
      next = false
      // Node hands the socket to the next pipelined answer as this one finishes
      setImmediate(() => { refuseAfterAnswers(err, socket, stats) })
    }
    inFlight.once('finish', then)
    inFlight.once('close', then)
    return
  }
  if (!socket.writable || inFlight?.headersSent === true) socket.destroy()
  else refuseClientError(err, socket, stats)
}

function refuseClientError (err: NodeJS.ErrnoException, socket: Duplex, stats: ApiStats): void {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    stats.badRequests['headers-too-large']++
    refuseSocket(socket, 431, 'REQUEST_HEADER_FIELDS_TOO_LARGE', 'request line and headers exceed the size limit', stats)
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    stats.badRequests.timeout++
    refuseSocket(socket, 408, 'REQUEST_TIMEOUT', 'the request did not arrive in time', stats)
  } else {
    stats.badRequests['bad-http']++
    refuseSocket(socket, 400, 'BAD_REQUEST', `malformed HTTP request (${err.code ?? err.message})`, stats)
  }
}

/**
 * Answers, with JSON, what Node's HTTP server would otherwise answer itself or drop: CONNECT and
 * unknown Expect headers; and refuses a `100-continue` request whose declared body is over
 * `maxBodyBytes` (the largest any route takes) before the client sends it.
 */
export function guardServer (server: Server, stats: ApiStats, turns: ConnectionTurns, maxBodyBytes: number): void {
  // without a listener Node closes a CONNECT socket without a word
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    stats.badRequests['bad-method']++
    refuseSocket(socket, 405, 'METHOD_NOT_ALLOWED', 'CONNECT is not allowed: this is not a proxy', stats)
  })

  // without a listener Node answers 100 to any size, and the client uploads a body only to get 413
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length'])
    if (!(declared > maxBodyBytes)) {
      res.writeContinue()
      server.emit('request', req, res)
      return
    }
    turns.enter(req, res)
    stats.badRequests['body-too-large']++
    // no route's hook counts this answer
    stats.errors++
    const message = `body exceeds the limit of ${maxBodyBytes} bytes`
    // the OpenAI door's own shape, as it answers a body over its limit sent without Expect
    const body = OPENAI_DOOR_PATH.test(req.url ?? '') ? new OpenAIError(413, message, { code: 'request_too_large' }).toJSON() : { error: { name: 'PAYLOAD_TOO_LARGE', message } }
    sendJson(res, 413, body, { connection: 'close', [NODE_HEADER]: VERSION })
  })

  // without a listener Node answers 417 with an empty body
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    // a request the router never sees: its place in the connection's line is taken here, so a
    // request pipelined behind this refusal (which closes the connection) is dropped unrun
    turns.enter(req, res)
    stats.badRequests['bad-expect']++
    stats.errors++
    sendJson(res, 417, { error: { name: 'EXPECTATION_FAILED', message: `expectation ${JSON.stringify(String(req.headers.expect).slice(0, 100))} is not supported (only 100-continue)` } }, { connection: 'close', [NODE_HEADER]: VERSION })
  })
}
