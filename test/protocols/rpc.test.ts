import { getEventListeners } from 'node:events'
import { noise } from '@chainsafe/libp2p-noise'
import { logger } from '@libp2p/logger'
import { memory } from '@libp2p/memory'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { PeersHeard, RpcEndpoint, RpcUnavailableError } from '../../protocols/rpc/index.js'
import { waitFor } from '../../sim/wait.js'
import type { RpcInit } from '../../protocols/rpc/index.js'
import type { Libp2p, PeerId } from '@libp2p/interface'

const PROTOCOL = '/agentmesh-test/rpc/1.0.0'
const PROBE = '/agentmesh-test/probe/1.0.0'
const log = logger('test:rpc')

/** What the server's handler is asked to do. */
type Op = { op: 'echo', value: unknown } | { op: 'hang' } | { op: 'gate', value: unknown } | { op: 'fail' } | { op: 'bad' } | { op: 'num', n: unknown }

/** Handlers held open by a test; released after it, so no handler outlives its test. */
class Gate {
  private readonly waiting: Array<() => void> = []
  private isOpen = false
  async pass (): Promise<void> { if (!this.isOpen) await new Promise<void>(resolve => this.waiting.push(resolve)) }
  open (): void { this.isOpen = true; for (const release of this.waiting.splice(0)) release() }
}

interface Pair {
  client: RpcEndpoint
  server: RpcEndpoint
  /** the server's peer id, to send requests to */
  peer: PeerId
  /** the server's handler invocations: running now, most at once, ever */
  handlers: { active: number, max: number, calls: number }
  /** the server's open streams of PROTOCOL */
  serverStreams: () => number
  gate: Gate
  nodes: { client: Libp2p, server: Libp2p }
}

describe('rpc endpoint on two real nodes', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  async function node (): Promise<Libp2p> {
    const n = await createLibp2p({
      addresses: { listen: [`/memory/rpc-test-${Math.random().toString(36).slice(2)}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false }
    })
    cleanups.push(async () => { await n.stop() })
    return n
  }

  async function pair (serverInit: Partial<RpcInit> = {}, clientInit: Partial<RpcInit> = {}): Promise<Pair> {
    const [a, b] = await Promise.all([node(), node()])
    await a.dial(b.getMultiaddrs())
    const gate = new Gate()
    const hang = new Gate()
    cleanups.push(async () => { gate.open(); hang.open() })
    const handlers = { active: 0, max: 0, calls: 0 }
    const server = new RpcEndpoint(b, {
      protocol: PROTOCOL,
      log,
      ...serverInit,
      handler: async body => {
        const req = body as Op
        handlers.calls++
        handlers.active++
        handlers.max = Math.max(handlers.max, handlers.active)
        try {
          switch (req.op) {
            case 'echo': return req.value
            case 'hang': await hang.pass(); return 'released'
            case 'gate': await gate.pass(); return req.value
            case 'fail': throw Object.assign(new Error('no such thing'), { code: 'NOT_FOUND' })
            case 'bad': return { n: 'not a number' }
            case 'num': return { n: req.n }
          }
        } finally {
          handlers.active--
        }
      }
    })
    const client = new RpcEndpoint(a, { protocol: PROTOCOL, log, handler: async () => 'client', ...clientInit })
    await server.start()
    await client.start()
    cleanups.push(async () => { await client.stop(); await server.stop() })
    const serverStreams = (): number => b.getConnections(a.peerId).flatMap(c => c.streams).filter(s => s.protocol === PROTOCOL && s.status === 'open').length
    return { client, server, peer: b.peerId, handlers, serverStreams, gate, nodes: { client: a, server: b } }
  }

  /** A client whose dials wait `delayMs` at its gater, not yet connected to a server answering with `handler`. */
  async function slowDial (delayMs: number, handler: RpcInit['handler']): Promise<{ client: RpcEndpoint, b: Libp2p }> {
    const slow = await createLibp2p({
      addresses: { listen: [`/memory/rpc-test-${Math.random().toString(36).slice(2)}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false },
      connectionGater: { denyDialPeer: async () => { await new Promise(resolve => setTimeout(resolve, delayMs)); return false } }
    })
    cleanups.push(async () => { await slow.stop() })
    const b = await node()
    const server = new RpcEndpoint(b, { protocol: PROTOCOL, log, handler })
    const client = new RpcEndpoint(slow, { protocol: PROTOCOL, log, handler: async () => 'client', requestTimeoutMs: 10_000 })
    await server.start()
    await client.start()
    cleanups.push(async () => { await client.stop(); await server.stop() })
    await slow.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
    return { client, b }
  }

  it('answers, and maps a remote failure to RpcRemoteError with its code', async () => {
    const { client, peer } = await pair()
    expect(await client.request(peer, { op: 'echo', value: { x: [1, 'two'] } })).toEqual({ x: [1, 'two'] })
    await expect(client.request(peer, { op: 'fail' })).rejects.toMatchObject({ name: 'RpcRemoteError', code: 'NOT_FOUND' })
    expect(client.stats).toMatchObject({ requestsSent: 2, streamsOpened: 1, timeouts: 0 })
  })

  it('tells a peer heard when a stream to it opens and when an answer comes from it, not while a request to it waits, nor by its own requests', async () => {
    const [clientHeard, serverHeard] = [new PeersHeard(), new PeersHeard()]
    const { client, server, peer, gate, nodes } = await pair({ heard: serverHeard }, { heard: clientHeard })
    const key = peer.toString()
    const before = performance.now()
    const waiting = client.request(peer, { op: 'gate', value: 'late' })
    await waitFor(() => client.stats.requestsSent === 1, { what: 'the request sent' })
    // the stream's opening: the peer took the protocol
    const opened = clientHeard.lastHeard(key)
    expect(opened).toBeGreaterThanOrEqual(before)
    // the peer's own request to the client says nothing of it to the client
    await expect(server.request(nodes.client.peerId, { op: 'any' })).resolves.toBe('client')
    expect(clientHeard.lastHeard(key)).toBe(opened)
    expect(serverHeard.lastHeard(nodes.client.peerId.toString())).toBeGreaterThanOrEqual(before)
    gate.open()
    expect(await waiting).toBe('late')
    expect(clientHeard.lastHeard(key)).toBeGreaterThan(opened as number)
    // suspected by a caller, until the next answer
    clientHeard.suspect(key)
    expect(clientHeard.isSuspected(key)).toBe(true)
    expect(await client.request(peer, { op: 'echo', value: 1 })).toBe(1)
    expect(clientHeard.isSuspected(key)).toBe(false)
  })

  it('times out a request that gets no answer; a silent stream is torn down and the next request dials afresh', async () => {
    const { client, peer, serverStreams } = await pair({}, { requestTimeoutMs: 10_000 })
    const quick = { timeoutMs: 200 }
    expect(await client.request(peer, { op: 'echo', value: 1 })).toBe(1)

    // one timeout, then an answer: a slow handler on a live stream, which is kept
    await expect(client.request(peer, { op: 'hang' }, quick)).rejects.toMatchObject({ name: 'RpcTimeoutError' })
    expect(await client.request(peer, { op: 'echo', value: 2 })).toBe(2)
    await expect(client.request(peer, { op: 'hang' }, quick)).rejects.toMatchObject({ name: 'RpcTimeoutError' })
    expect(client.stats).toMatchObject({ timeouts: 2, channelsReset: 0, streamsOpened: 1 })

    // a bystander waits on the same stream, with a long timeout of its own
    const bystander = client.request(peer, { op: 'hang' }, { timeoutMs: 30_000 })
    const bystanderFailed = bystander.catch((err: Error) => err)
    // the second timeout in a row with nothing heard in between: the stream is reset
    await expect(client.request(peer, { op: 'hang' }, quick)).rejects.toMatchObject({ name: 'RpcTimeoutError' })
    const err = await bystanderFailed
    expect(err).toMatchObject({ name: 'RpcChannelResetError' })
    expect(err).toBeInstanceOf(RpcUnavailableError)
    expect(client.stats).toMatchObject({ timeouts: 3, channelsReset: 1 })
    // the abort reached the server: its end of the old stream goes away
    await waitFor(() => serverStreams() === 0, { timeoutMs: 5_000, what: 'the server to drop the reset stream' })

    // the peer itself is fine: a fresh stream serves the next request
    expect(await client.request(peer, { op: 'echo', value: 3 })).toBe(3)
    expect(client.stats.streamsOpened).toBe(2)
    expect(serverStreams()).toBe(1)
  })

  it('counts the dial in a request\'s timeout: one whose stream opens late fails at its timeout, not its timeout after', async () => {
    // the client's dials wait 1.5 s at its gater (a peer behind a partition, or slow to handshake)
    const { client, b } = await slowDial(1_500, async () => await new Promise(() => {}))
    const t0 = performance.now()
    const err = await client.request(b.peerId, { op: 'hang' }, { timeoutMs: 500 }).catch((e: Error) => e)
    const took = performance.now() - t0
    expect(err).toMatchObject({ name: 'RpcUnavailableError', message: expect.stringContaining('no stream open within 500 ms') })
    // was the dial's 1.5 s and then the request's own 500 ms
    expect(took).toBeLessThan(1_400)
  })

  it('requests a slow dial left little time do not tear down the stream they waited for', async () => {
    const hang = new Gate()
    cleanups.push(async () => { hang.open() })
    const { client, b } = await slowDial(1_000, async body => { if ((body as Op).op === 'hang') await hang.pass(); return (body as { value?: unknown }).value ?? null })
    // two in a row time out with a fifth of their time left once the stream opens: not the stream's fault
    const squeezed = await Promise.all([1, 2].map(async () => client.request(b.peerId, { op: 'hang' }, { timeoutMs: 1_250 }).catch((err: Error) => err)))
    for (const err of squeezed) expect(['RpcTimeoutError', 'RpcUnavailableError']).toContain((err as Error).name)
    expect(await client.request(b.peerId, { op: 'echo', value: 7 })).toBe(7)
    expect(client.stats).toMatchObject({ channelsReset: 0, streamsOpened: 1 })
  })

  it('with maxConsecutiveTimeouts: 1, tears the stream down at the first timeout', async () => {
    const { client, peer } = await pair({}, { requestTimeoutMs: 10_000, maxConsecutiveTimeouts: 1 })
    const bystander = client.request(peer, { op: 'hang' }, { timeoutMs: 30_000 }).catch((err: Error) => err)
    await expect(client.request(peer, { op: 'hang' }, { timeoutMs: 200 })).rejects.toMatchObject({ name: 'RpcTimeoutError' })
    expect(await bystander).toMatchObject({ name: 'RpcChannelResetError' })
    expect(await client.request(peer, { op: 'echo', value: 'again' })).toBe('again')
    expect(client.stats).toMatchObject({ channelsReset: 1, streamsOpened: 2 })
  })

  it('drops and counts an answer that comes after its request timed out', async () => {
    const { client, server, peer, gate } = await pair({}, { requestTimeoutMs: 10_000 })
    await expect(client.request(peer, { op: 'gate', value: 'late' }, { timeoutMs: 200 })).rejects.toMatchObject({ name: 'RpcTimeoutError' })
    // a request after it on the same stream gets its own answer, not the late one
    const next = client.request(peer, { op: 'gate', value: 'on time' })
    await waitFor(() => server.stats.requestsServed === 0 && client.stats.requestsSent === 2, { what: 'the second request sent' })
    gate.open()
    expect(await next).toBe('on time')
    await waitFor(() => client.stats.lateAnswers === 1, { timeoutMs: 5_000, what: () => `the late answer counted (${JSON.stringify(client.stats)})` })
    expect(server.stats.requestsServed).toBe(2)
    // the late answer proved the stream alive: it is kept
    expect(client.stats).toMatchObject({ timeouts: 1, channelsReset: 0, streamsOpened: 1, lateAnswers: 1 })
  })

  it.each([
    ['the default of 32', undefined, 32],
    ['4', 4, 4]
  ])('runs at most %s handlers at once per stream; the rest wait and all are answered', async (_name, maxConcurrentHandlers, limit) => {
    const { client, server, peer, handlers, gate, nodes } = await pair({ maxConcurrentHandlers }, { requestTimeoutMs: 20_000 })
    // a second protocol on the same connection: its answer shows what was sent before it arrived
    const probeServer = new RpcEndpoint(nodes.server, { protocol: PROBE, log, handler: async () => 'pong' })
    const probeClient = new RpcEndpoint(nodes.client, { protocol: PROBE, log, handler: async () => 'pong' })
    await probeServer.start()
    await probeClient.start()
    cleanups.push(async () => { await probeClient.stop(); await probeServer.stop() })

    const answers = Array.from({ length: 100 }, async (_, i) => client.request(peer, { op: 'gate', value: i }))
    await waitFor(() => handlers.active >= limit, { what: () => `${limit} handlers running (${handlers.active})` })
    expect(await probeClient.request(peer, 'ping')).toBe('pong')
    expect(handlers.active).toBe(limit)
    expect(handlers.calls).toBe(limit)
    expect(server.stats.handlerWaits).toBeGreaterThanOrEqual(1)
    gate.open()
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 100 }, (_, i) => i))
    expect(handlers.max).toBe(limit)
    expect(server.stats.requestsServed).toBe(100)
    expect(client.stats).toMatchObject({ streamsOpened: 1, timeouts: 0 })
  })

  it('holds back large requests beyond the bound through the stream window, and drops none', async () => {
    const { client, server, peer, handlers, gate } = await pair({ maxConcurrentHandlers: 2 }, { requestTimeoutMs: 20_000 })
    const big = 'x'.repeat(100_000)
    // 6 MB in flight: more than a stream buffers (4 MiB), so the sender must be held back
    const answers = Array.from({ length: 60 }, async (_, i) => client.request(peer, { op: 'gate', value: `${i}${big}` }))
    await waitFor(() => handlers.active === 2, { what: 'two handlers running' })
    gate.open()
    const got = await Promise.all(answers)
    expect(got.map(a => (a as string).length)).toEqual(answers.map((_, i) => `${i}`.length + big.length))
    expect(handlers.max).toBe(2)
    expect(server.stats).toMatchObject({ requestsServed: 60, badFrames: 0 })
    expect(client.stats.streamsOpened).toBe(1)
  })

  it('reads frames whose length prefix is 1, 2 or 3 bytes, split anywhere; a prefix longer than any frame ends the stream and is counted', async () => {
    const { client, server, peer, nodes } = await pair()
    // JSON frames of about 1 to 300,000 bytes: prefixes of 1, 2 and 3 bytes, and the edges between
    const sizes = [0, 100, 116, 117, 16_360, 16_370, 300_000]
    const got = await Promise.all(sizes.map(async n => client.request(peer, { op: 'echo', value: 'y'.repeat(n) })))
    expect(got.map(v => (v as string).length)).toEqual(sizes)
    // the same over a raw stream, one byte per message: the prefix arrives in pieces
    const raw = await nodes.client.dialProtocol(peer, PROTOCOL)
    const frame = new TextEncoder().encode(JSON.stringify({ i: 1, b: { op: 'echo', value: 'z'.repeat(200) } }))
    const prefixed = new Uint8Array([frame.length & 0x7f | 0x80, frame.length >> 7, ...frame])
    for (let i = 0; i < 4; i++) raw.send(prefixed.subarray(i, i + 1))
    raw.send(prefixed.subarray(4))
    await waitFor(() => server.stats.requestsServed === sizes.length + 1, { what: 'the byte-by-byte frame served' })
    // nine continuation bytes: no frame is that long
    const before = server.stats.badFrames
    const bad = await nodes.client.dialProtocol(peer, PROTOCOL)
    bad.send(new Uint8Array(9).fill(0x80))
    await waitFor(() => server.stats.badFrames === before + 1 && bad.status !== 'open', { what: () => `the stream ended (${bad.status}, badFrames ${server.stats.badFrames})` })
    expect(await client.request(peer, { op: 'echo', value: 'still served' })).toBe('still served')
  })

  it('parses an answer against the caller\'s schema; one that fails it rejects with RpcBadResponseError', async () => {
    const { client, peer } = await pair()
    const schema = z.object({ n: z.number() }).strict()
    const doubled = schema.transform(v => v.n * 2)
    // the parsed value is returned, typed by the schema
    const n: number = await client.request(peer, { op: 'num', n: 21 }, { schema: doubled })
    expect(n).toBe(42)
    await expect(client.request(peer, { op: 'bad' }, { schema })).rejects.toMatchObject({ name: 'RpcBadResponseError' })
    await expect(client.request(peer, { op: 'num', n: 1 }, { schema: z.string() })).rejects.toMatchObject({ name: 'RpcBadResponseError' })
    expect(client.stats.badResponses).toBe(2)
    // a remote error is still a remote error; without a schema the answer is returned as it came
    await expect(client.request(peer, { op: 'fail' }, { schema })).rejects.toMatchObject({ name: 'RpcRemoteError' })
    expect(await client.request(peer, { op: 'bad' })).toEqual({ n: 'not a number' })
    // a bad answer is the peer's fault, not the stream's: it is kept
    expect(client.stats).toMatchObject({ badResponses: 2, channelsReset: 0, streamsOpened: 1 })
  })

  it('removes its abort listener when a request settles, however it settles', async () => {
    const { client, peer } = await pair({}, { requestTimeoutMs: 10_000 })
    const controller = new AbortController()
    const { signal } = controller
    const listeners = (): number => getEventListeners(signal, 'abort').length

    // the first request also waits for the dial with the signal
    for (let batch = 0; batch < 10; batch++) {
      const inFlight = Array.from({ length: 100 }, async (_, i) => client.request(peer, { op: 'echo', value: batch * 100 + i }, { signal }))
      await waitFor(() => listeners() > 0, { what: 'listeners while requests are in flight' })
      expect(await Promise.all(inFlight)).toHaveLength(100)
      expect(listeners()).toBe(0)
    }
    // timeouts and remote errors too
    await expect(client.request(peer, { op: 'hang' }, { signal, timeoutMs: 150 })).rejects.toMatchObject({ name: 'RpcTimeoutError' })
    await expect(client.request(peer, { op: 'fail' }, { signal })).rejects.toMatchObject({ name: 'RpcRemoteError' })
    expect(listeners()).toBe(0)
    expect(client.stats.requestsSent).toBe(1_002)

    // an abort ends that request alone, and it is forgotten
    const other = new AbortController()
    const aborted = client.request(peer, { op: 'hang' }, { signal: other.signal, timeoutMs: 30_000 }).catch((err: Error) => err)
    const bystander = client.request(peer, { op: 'echo', value: 'kept' }, { signal })
    other.abort()
    expect(await aborted).toMatchObject({ name: 'RpcUnavailableError' })
    expect(await bystander).toBe('kept')
    expect(getEventListeners(other.signal, 'abort')).toHaveLength(0)
    expect(listeners()).toBe(0)
    // an already aborted signal sends nothing
    const sent = client.stats.requestsSent
    await expect(client.request(peer, { op: 'echo', value: 'x' }, { signal: other.signal })).rejects.toMatchObject({ name: 'RpcUnavailableError' })
    expect(client.stats.requestsSent).toBe(sent)
  })
})
