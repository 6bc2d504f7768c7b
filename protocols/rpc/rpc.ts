import { lpStream } from '@libp2p/utils'
import { RpcRemoteError, RpcTimeoutError, RpcUnavailableError } from './errors.js'
import type { Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'

export type RpcHandler = (body: unknown, from: PeerId) => Promise<unknown>

export interface RpcInit {
  protocol: string
  handler: RpcHandler
  /**
   * Largest frame read or written; a larger incoming frame closes the stream.
   * @default 1_048_576
   */
  maxFrameBytes?: number
  /** @default 5_000 */
  requestTimeoutMs?: number
  /**
   * Inbound streams per connection for this protocol. One is used per peer; the rest is slack.
   * @default 8
   */
  maxInboundStreams?: number
  log: Logger
}

export interface RpcStats {
  requestsSent: number
  requestsServed: number
  /** inbound frames that were not JSON, not a request, or too large */
  badFrames: number
  handlerErrors: number
  streamsOpened: number
}

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  timer: ReturnType<typeof setTimeout>
}

interface Channel {
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  pending: Map<number, Pending>
  writes: Promise<void>
}

type Libp2pLike = Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>

/** One protocol's client and server. */
export class RpcEndpoint {
  readonly stats: RpcStats = { requestsSent: 0, requestsServed: 0, badFrames: 0, handlerErrors: 0, streamsOpened: 0 }
  private readonly libp2p: Libp2pLike
  private readonly init: RpcInit
  private readonly channels = new Map<string, Promise<Channel>>()
  private readonly inbound = new Set<Stream>()
  private nextId = 1
  private running = false

  constructor (libp2p: Libp2pLike, init: RpcInit) {
    this.libp2p = libp2p
    this.init = init
  }

  private get maxFrame (): number {
    return this.init.maxFrameBytes ?? 1_048_576
  }

  async start (): Promise<void> {
    this.running = true
    await this.libp2p.handle(this.init.protocol, (stream, connection) => { void this.serve(stream, connection.remotePeer) }, {
      maxInboundStreams: this.init.maxInboundStreams ?? 8
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

  /** Sends `body` to `peer` and resolves with its answer. */
  async request (peer: PeerId, body: unknown, options: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<unknown> {
    if (!this.running) throw new RpcUnavailableError('endpoint not started')
    const channel = await this.channel(peer, options.signal)
    const id = this.nextId++
    const frame = new TextEncoder().encode(JSON.stringify({ i: id, b: body }))
    if (frame.byteLength > this.maxFrame) throw new RangeError(`request of ${frame.byteLength} bytes exceeds the frame limit ${this.maxFrame}`)
    this.stats.requestsSent++
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.init.requestTimeoutMs ?? 5_000
      const timer = setTimeout(() => {
        channel.pending.delete(id)
        reject(new RpcTimeoutError(`${this.init.protocol} to ${peer.toString()}: no answer in ${timeoutMs} ms`))
      }, timeoutMs)
      channel.pending.set(id, { resolve, reject, timer })
      options.signal?.addEventListener('abort', () => {
        if (channel.pending.delete(id)) { clearTimeout(timer); reject(new RpcUnavailableError('aborted')) }
      }, { once: true })
      channel.writes = channel.writes.then(async () => channel.lp.write(frame)).catch(err => {
        this.fail(channel, new RpcUnavailableError(`${this.init.protocol} to ${peer.toString()}: write failed: ${err.message}`))
      })
    })
  }

  private async channel (peer: PeerId, signal?: AbortSignal): Promise<Channel> {
    const key = peer.toString()
    let existing = this.channels.get(key)
    if (existing === undefined) {
      existing = this.open(peer, signal)
      this.channels.set(key, existing)
      existing.catch(() => { if (this.channels.get(key) === existing) this.channels.delete(key) })
    }
    return existing
  }

  private async open (peer: PeerId, signal?: AbortSignal): Promise<Channel> {
    let stream: Stream
    try {
      stream = await this.libp2p.dialProtocol(peer, this.init.protocol, { signal: signal ?? AbortSignal.timeout(this.init.requestTimeoutMs ?? 5_000) })
    } catch (err: any) {
      throw new RpcUnavailableError(`cannot open ${this.init.protocol} to ${peer.toString()}: ${err.message}`)
    }
    this.stats.streamsOpened++
    const channel: Channel = { stream, lp: this.lp(stream), pending: new Map(), writes: Promise.resolve() }
    void this.readAnswers(peer, channel)
    return channel
  }

  private lp (stream: Stream): LengthPrefixedStream<Stream> {
    return lpStream(stream, { maxDataLength: this.maxFrame, maxBufferSize: this.maxFrame + 64 })
  }

  private async readAnswers (peer: PeerId, channel: Channel): Promise<void> {
    try {
      while (true) {
        const frame = parseFrame(await channel.lp.read())
        const pending = frame === undefined ? undefined : channel.pending.get(frame.i)
        if (frame === undefined || pending === undefined) continue
        channel.pending.delete(frame.i)
        clearTimeout(pending.timer)
        if (frame.e !== undefined) pending.reject(new RpcRemoteError(String(frame.e.code ?? 'ERROR'), String(frame.e.message ?? 'remote error')))
        else pending.resolve(frame.b)
      }
    } catch (err: any) {
      this.fail(channel, new RpcUnavailableError(`${this.init.protocol} stream to ${peer.toString()} closed: ${err.message}`))
    }
  }

  private fail (channel: Channel, err: Error): void {
    for (const [id, p] of channel.pending) {
      clearTimeout(p.timer)
      p.reject(err)
      channel.pending.delete(id)
    }
    for (const [key, c] of this.channels) void c.then(open => { if (open === channel) this.channels.delete(key) }, () => {})
    if (channel.stream.status === 'open') channel.stream.abort(err)
  }

  private async serve (stream: Stream, from: PeerId): Promise<void> {
    this.inbound.add(stream)
    const lp = this.lp(stream)
    let writes = Promise.resolve()
    try {
      while (this.running) {
        const frame = parseFrame(await lp.read())
        if (frame === undefined || typeof frame.i !== 'number') {
          // the framing can no longer be trusted: drop this stream, the peer may open another
          this.stats.badFrames++
          stream.abort(new Error('bad frame'))
          return
        }
        const id = frame.i
        void this.init.handler(frame.b, from).then(answer => ({ i: id, b: answer }), (err: any) => {
          if (err instanceof TypeError || err instanceof ReferenceError) this.init.log.error('handler bug: %s', err.stack)
          this.stats.handlerErrors++
          return { i: id, e: { code: err?.code ?? err?.name ?? 'ERROR', message: String(err?.message ?? err) } }
        }).then(reply => {
          this.stats.requestsServed++
          writes = writes.then(async () => lp.write(new TextEncoder().encode(JSON.stringify(reply)))).catch(() => {})
        })
      }
    } catch (err: any) {
      if (err?.name === 'InvalidDataLengthError' || err?.name === 'InvalidDataLengthLengthError' || err?.name === 'StreamBufferError') {
        this.stats.badFrames++
        stream.abort(err)
        return
      }
      // the peer closed its side: finish our answers, then close ours, so the stream is freed
      await writes
      await stream.close().catch(() => { stream.abort(new Error('close failed')) })
    } finally {
      this.inbound.delete(stream)
    }
  }
}

interface Frame { i: number, b?: unknown, e?: { code?: unknown, message?: unknown } }

function parseFrame (buf: { subarray: () => Uint8Array }): Frame | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(buf.subarray()))
    return typeof value === 'object' && value !== null ? value as Frame : undefined
  } catch {
    return undefined
  }
}
