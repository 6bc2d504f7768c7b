import { lpStream } from '@libp2p/utils'
import { DEFAULT_MAX_CONCURRENT_HANDLERS, DEFAULT_MAX_CONSECUTIVE_TIMEOUTS, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_INBOUND_STREAMS, DEFAULT_REQUEST_TIMEOUT_MS } from './constants.js'
import { FrameWriter } from './frame-writer.js'
import { frameLength } from './frame-length.js'
import { RpcBadResponseError, RpcChannelResetError, RpcRemoteError, RpcTimeoutError, RpcUnavailableError } from './errors.js'
import type { PeersHeard } from './heard.js'
import type { Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { ZodType } from 'zod'

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder()

export type RpcHandler = (body: unknown, from: PeerId) => Promise<unknown>

export interface RpcInit {
  protocol: string
  handler: RpcHandler
  /**
   * Largest frame read or written; a larger incoming frame closes the stream.
   * @default 1_048_576
   */
  maxFrameBytes?: number
  /**
   * How long a request waits for its answer; also bounds the dial of a new stream.
   * @default 5_000
   */
  requestTimeoutMs?: number
  /**
   * Inbound streams per connection for this protocol. One is used per peer; the rest is slack.
   * @default 8
   */
  maxInboundStreams?: number
  /**
   * Handlers running at once for one inbound stream. Further requests wait unread: the stream is
   * paused, so the sender's window fills and its writes wait (backpressure; nothing is dropped).
   * @default 32
   */
  maxConcurrentHandlers?: number
  /**
   * Timeouts in a row on one outbound stream, with no frame from the peer between them, after
   * which the stream is aborted (its other requests reject with RpcChannelResetError) and the next
   * request dials a fresh one. Not 1: on a shared stream one timeout is ambiguous (one slow
   * handler, a busy event loop on either side) and tearing down then would fail every other
   * request in flight on a healthy stream. Two with nothing heard in between mean the stream
   * is silent. Any frame from the peer, a late answer included, restarts the count.
   * @default 2
   */
  maxConsecutiveTimeouts?: number
  /**
   * Marked with the peer on every answer read from it and every stream to it opened (shared by
   * endpoints). Not on its requests: a server paused for backpressure reads them late, seconds
   * after the peer sent them.
   */
  heard?: PeersHeard
  log: Logger
}

export interface RpcRequestOptions {
  /** @default the endpoint's requestTimeoutMs */
  timeoutMs?: number
  /** aborts this request alone (with RpcUnavailableError); a shared stream or dial is kept */
  signal?: AbortSignal
}

export interface RpcStats {
  requestsSent: number
  requestsServed: number
  /** inbound frames that were not JSON, not a request or an answer, or too large */
  badFrames: number
  handlerErrors: number
  streamsOpened: number
  /** requests that got no answer in time */
  timeouts: number
  /** answers to no pending request (it had timed out or been aborted): dropped */
  lateAnswers: number
  /** outbound streams torn down after maxConsecutiveTimeouts */
  channelsReset: number
  /** answers that failed the caller's response schema */
  badResponses: number
  /** times an inbound stream was paused because maxConcurrentHandlers handlers were running */
  handlerWaits: number
  /** frames (requests and answers) written, and the stream writes that carried them */
  framesWritten: number
  writes: number
}

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: Error) => void
}

interface Channel {
  key: string
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  pending: Map<number, Pending>
  writer: FrameWriter
  /** timeouts since the last frame from the peer */
  timeoutsInARow: number
  /** torn down: no new request may use it */
  closed: boolean
}

type Libp2pLike = Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>

/** One protocol's client and server. */
export class RpcEndpoint {
  readonly stats: RpcStats = {
    requestsSent: 0,
    requestsServed: 0,
    badFrames: 0,
    handlerErrors: 0,
    streamsOpened: 0,
    timeouts: 0,
    lateAnswers: 0,
    channelsReset: 0,
    badResponses: 0,
    handlerWaits: 0,
    framesWritten: 0,
    writes: 0
  }

  private readonly libp2p: Libp2pLike
  private readonly init: RpcInit
  private readonly maxFrame: number
  private readonly timeoutMs: number
  private readonly maxHandlers: number
  private readonly maxTimeoutsInARow: number
  private readonly channels = new Map<string, Promise<Channel>>()
  private readonly inbound = new Set<Stream>()
  private nextId = 1
  private running = false

  constructor (libp2p: Libp2pLike, init: RpcInit) {
    this.libp2p = libp2p
    this.init = init
    this.maxFrame = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.timeoutMs = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.maxHandlers = Math.max(1, init.maxConcurrentHandlers ?? DEFAULT_MAX_CONCURRENT_HANDLERS)
    this.maxTimeoutsInARow = Math.max(1, init.maxConsecutiveTimeouts ?? DEFAULT_MAX_CONSECUTIVE_TIMEOUTS)
  }

  async start (): Promise<void> {
    this.running = true
    await this.libp2p.handle(this.init.protocol, (stream, connection) => { void this.serve(stream, connection.remotePeer) }, {
      maxInboundStreams: this.init.maxInboundStreams ?? DEFAULT_MAX_INBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    this.running = false
    await this.libp2p.unhandle(this.init.protocol)
    for (const channel of this.channels.values()) void channel.then(c => { this.fail(c, new RpcUnavailableError('endpoint stopped')) }, () => {})
    this.channels.clear()
    for (const stream of this.inbound) stream.abort(new Error('endpoint stopped'))
    this.inbound.clear()
  }

  /**
   * Sends `body` to `peer` and resolves with its answer. With a `schema`, the answer is parsed by
   * it and the parsed value returned; an answer that fails it rejects with RpcBadResponseError.
   */
  async request (peer: PeerId, body: unknown, options?: RpcRequestOptions): Promise<unknown>
  async request<T> (peer: PeerId, body: unknown, options: RpcRequestOptions & { schema: ZodType<T> }): Promise<T>
  async request (peer: PeerId, body: unknown, options: RpcRequestOptions & { schema?: ZodType } = {}): Promise<unknown> {
    if (!this.running) throw new RpcUnavailableError('endpoint not started')
    const to = `${this.init.protocol} to ${peer.toString()}`
    if (options.signal?.aborted === true) throw new RpcUnavailableError(`${to}: aborted`)
    const id = this.nextId++
    const frame = utf8Encoder.encode(JSON.stringify({ i: id, b: body }))
    if (frame.byteLength > this.maxFrame) throw new RangeError(`request of ${frame.byteLength} bytes exceeds the frame limit ${this.maxFrame}`)
    const timeoutMs = options.timeoutMs ?? this.timeoutMs
    const startedAt = performance.now()
    // the timeout bounds the whole request, its dial too: a dial to a peer behind a partition hangs
    // until its own timeout, and a request timed from its stream took twice its timeout to fail
    const channel = await untilAborted(withinMs(this.channel(peer), timeoutMs, () => new RpcUnavailableError(`${to}: no stream open within ${timeoutMs} ms`)), options.signal, () => new RpcUnavailableError(`${to}: aborted`))
    this.stats.requestsSent++
    const answer = await this.exchange(channel, to, id, frame, options, Math.max(1, timeoutMs - (performance.now() - startedAt)))
    if (options.schema === undefined) return answer
    const parsed = options.schema.safeParse(answer)
    if (parsed.success) return parsed.data
    this.stats.badResponses++
    const issues = parsed.error.issues.slice(0, 3).map(issue => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`).join('; ')
    throw new RpcBadResponseError(`${to}: answer fails its schema: ${issues}`, { cause: parsed.error })
  }

  /** Writes one request on `channel` and waits for its answer, its timeout (`leftMs` of it left), or its signal. */
  private async exchange (channel: Channel, to: string, id: number, frame: Uint8Array, options: RpcRequestOptions, leftMs: number): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs
    const signal = options.signal
    return new Promise((resolve, reject) => {
      // every way out goes through here, so the timer and the abort listener never outlive the request
      const settled = (): boolean => {
        if (!channel.pending.delete(id)) return false
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        return true
      }
      const onAbort = (): void => { if (settled()) reject(new RpcUnavailableError(`${to}: aborted`)) }
      const timer = setTimeout(() => {
        if (!settled()) return
        this.stats.timeouts++
        reject(new RpcTimeoutError(`${to}: no answer in ${timeoutMs} ms`))
        // a request whose dial took most of its time says little of the stream: it does not count
        // towards tearing down the stream it waited for
        if (leftMs < timeoutMs / 2) return
        if (++channel.timeoutsInARow >= this.maxTimeoutsInARow) {
          this.stats.channelsReset++
          this.init.log('%s: %d timeouts in a row, resetting the stream', to, channel.timeoutsInARow)
          this.fail(channel, new RpcChannelResetError(`${to}: stream reset after ${channel.timeoutsInARow} timeouts in a row`))
        }
      }, leftMs)
      channel.pending.set(id, {
        resolve: value => { if (settled()) resolve(value) },
        reject: err => { if (settled()) reject(err) }
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      // a request that timed out or was aborted while queued behind others is never sent
      channel.writer.write(frame, () => channel.pending.has(id))
    })
  }

  private async channel (peer: PeerId): Promise<Channel> {
    const key = peer.toString()
    // a torn-down channel may still be in the map for a moment: then dial afresh, once
    for (let attempt = 0; attempt < 2; attempt++) {
      let ready = this.channels.get(key)
      if (ready === undefined) {
        const opening = this.open(peer, key)
        this.channels.set(key, opening)
        opening.catch(() => { if (this.channels.get(key) === opening) this.channels.delete(key) })
        ready = opening
      }
      const channel = await ready
      if (!channel.closed) return channel
      if (this.channels.get(key) === ready) this.channels.delete(key)
    }
    throw new RpcUnavailableError(`${this.init.protocol} to ${key}: stream closed as soon as opened`)
  }

  private async open (peer: PeerId, key: string): Promise<Channel> {
    let stream: Stream
    try {
      // the dial is shared by every request waiting for it, so no one caller's signal may end it
      stream = await this.libp2p.dialProtocol(peer, this.init.protocol, { signal: AbortSignal.timeout(this.timeoutMs) })
    } catch (err: any) {
      throw new RpcUnavailableError(`cannot open ${this.init.protocol} to ${key}: ${err.message}`)
    }
    if (!this.running) {
      stream.abort(new Error('endpoint stopped'))
      throw new RpcUnavailableError('endpoint stopped')
    }
    this.stats.streamsOpened++
    this.init.heard?.mark(key)
    const lp = this.lp(stream)
    // the writer fails the channel only from a write, so after `channel` exists
    const writer = new FrameWriter(lp, err => { this.fail(channel, new RpcUnavailableError(`${this.init.protocol} to ${key}: write failed: ${err.message}`)) }, this.stats)
    const channel: Channel = { key, stream, lp, pending: new Map(), writer, timeoutsInARow: 0, closed: false }
    void this.readAnswers(channel)
    return channel
  }

  /**
   * The byte buffer holds what arrived and is not yet read as frames. A server's stream, paused
   * for backpressure, hands over what it kept (up to its maxReadBufferLength) in one event on
   * resume; a requester's takes several large answers before its reader runs. Both get the
   * stream's own bound as slack beside a partly read frame; past it the channel is torn down. A
   * peer can make us hold that much per stream either way, as libp2p lets any stream.
   */
  private lp (stream: Stream): LengthPrefixedStream<Stream> {
    return lpStream(stream, { maxDataLength: this.maxFrame, maxBufferSize: this.maxFrame + 64 + stream.maxReadBufferLength, lengthDecoder: frameLength })
  }

  private async readAnswers (channel: Channel): Promise<void> {
    try {
      while (true) {
        const frame = parseFrame(await channel.lp.read())
        if (frame === undefined || typeof frame.i !== 'number') {
          this.stats.badFrames++
          continue
        }
        channel.timeoutsInARow = 0 // the stream carries data: a timeout before this was a slow handler
        this.init.heard?.mark(channel.key)
        const pending = channel.pending.get(frame.i)
        if (pending === undefined) {
          this.stats.lateAnswers++
          continue
        }
        if (frame.e !== undefined) pending.reject(new RpcRemoteError(String(frame.e.code ?? 'ERROR'), String(frame.e.message ?? 'remote error')))
        else pending.resolve(frame.b)
      }
    } catch (err: any) {
      this.fail(channel, new RpcUnavailableError(`${this.init.protocol} stream to ${channel.key} closed: ${err.message}`))
    }
  }

  /** Tears `channel` down: its pending requests reject with `err`, its stream is aborted. */
  private fail (channel: Channel, err: Error): void {
    if (channel.closed) return
    channel.closed = true
    for (const pending of [...channel.pending.values()]) pending.reject(err)
    const ready = this.channels.get(channel.key)
    void ready?.then(open => { if (open === channel && this.channels.get(channel.key) === ready) this.channels.delete(channel.key) }, () => {})
    if (channel.stream.status === 'open') channel.stream.abort(err)
  }

  private async serve (stream: Stream, from: PeerId): Promise<void> {
    this.inbound.add(stream)
    const lp = this.lp(stream)
    const writer = new FrameWriter(lp, () => {}, this.stats)
    let active = 0
    let slotFreed: PromiseWithResolvers<void> | undefined
    try {
      while (this.running) {
        if (active >= this.maxHandlers) {
          // backpressure: stop reading and stop granting the sender window until a handler ends
          this.stats.handlerWaits++
          stream.pause()
          slotFreed = Promise.withResolvers()
          await slotFreed.promise
          slotFreed = undefined
          if (stream.readStatus === 'paused') stream.resume()
        }
        const frame = parseFrame(await lp.read())
        if (frame === undefined || typeof frame.i !== 'number') {
          // the framing can no longer be trusted: drop this stream, the peer may open another
          this.stats.badFrames++
          stream.abort(new Error('bad frame'))
          return
        }
        const id = frame.i
        active++
        void (async () => this.init.handler(frame.b, from))().then(answer => ({ i: id, b: answer }), (err: any) => {
          if (err instanceof TypeError || err instanceof ReferenceError) this.init.log.error('handler bug: %s', err.stack)
          this.stats.handlerErrors++
          return { i: id, e: { code: err?.code ?? err?.name ?? 'ERROR', message: String(err?.message ?? err) } }
        }).then(reply => {
          this.stats.requestsServed++
          writer.write(utf8Encoder.encode(JSON.stringify(reply)))
        }).finally(() => {
          active--
          slotFreed?.resolve()
        })
      }
    } catch (err: any) {
      if (err?.name === 'InvalidDataLengthError' || err?.name === 'InvalidDataLengthLengthError' || err?.name === 'FrameLengthError' || err?.name === 'StreamBufferError') {
        this.stats.badFrames++
        stream.abort(err)
        return
      }
      // reset or aborted: no answer can go out any more
      if (stream.status !== 'open') return
      // the peer closed its side: finish our answers, then close ours, so the stream is freed
      while (active > 0) {
        slotFreed = Promise.withResolvers()
        await slotFreed.promise
      }
      await writer.idle()
      await stream.close().catch(() => { stream.abort(new Error('close failed')) })
    } finally {
      this.inbound.delete(stream)
    }
  }
}

interface Frame { i: number, b?: unknown, e?: { code?: unknown, message?: unknown } }

function parseFrame (buf: { subarray: () => Uint8Array }): Frame | undefined {
  try {
    const value = JSON.parse(utf8Decoder.decode(buf.subarray()))
    return typeof value === 'object' && value !== null ? value as Frame : undefined
  } catch {
    return undefined
  }
}

/** `promise`, or `onTimeout()`'s error once `ms` pass (the promise itself goes on, for whoever else waits on it). */
async function withinMs<T> (promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { reject(onTimeout()) }, ms)
    void promise.then(resolve, reject).finally(() => { clearTimeout(timer) })
  })
}

/** `promise`, or `onAbort()` once `signal` aborts; the listener is removed either way. */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal | undefined, onAbort: () => Error): Promise<T> {
  if (signal === undefined) return promise
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => { reject(onAbort()) }
    signal.addEventListener('abort', abort, { once: true })
    void promise.then(resolve, reject).finally(() => { signal.removeEventListener('abort', abort) })
  })
}
