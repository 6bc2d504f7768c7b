import { randomBytes } from 'node:crypto'
import { Socket } from 'node:net'
import { logger } from '@libp2p/logger'
import { LengthPrefixedDecoder, lpStream } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { noiseFrameLength, socketWriteStats } from '../../node/transport-tuning.js'
import { RpcEndpoint } from '../../protocols/rpc/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'
import type { Stream } from '@libp2p/interface'

const PROTOCOL = '/agentmesh-test/tuning/1.0.0'
const log = logger('test:tuning')

interface YamuxView { recvWindow: number, recvWindowCapacity: number }

describe('transport tuning on real TCP connections (corked sockets, Noise reads, yamux window updates)', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  const endpoints: RpcEndpoint[] = []
  afterEach(async () => {
    for (const e of endpoints.splice(0)) await e.stop()
    await net?.stop()
    net = undefined
  })

  it('a burst of requests in one turn leaves in few socket writes, and large frames arrive intact', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), transport: 'tcp', tasks: false })
    await net.waitForFullMesh()
    const [a, b] = net.nodes
    if (a === undefined || b === undefined) throw new Error('two nodes expected')
    const client = new RpcEndpoint(a.libp2p, { protocol: PROTOCOL, handler: async body => body, maxFrameBytes: 2_000_000, log })
    const server = new RpcEndpoint(b.libp2p, { protocol: PROTOCOL, handler: async body => body, maxFrameBytes: 2_000_000, log })
    endpoints.push(client, server)
    await client.start()
    await server.start()
    await client.request(b.peerId, { warm: true })

    // one request on each of eight protocols in one turn: eight streams, eight yamux frames, each
    // a Noise message of two buffers (length, ciphertext); one write(2) for all of them
    const protocols = Array.from({ length: 8 }, (_, i) => `${PROTOCOL}/${i}`)
    const pairs = protocols.map(protocol => [
      new RpcEndpoint(a.libp2p, { protocol, handler: async body => body, log }),
      new RpcEndpoint(b.libp2p, { protocol, handler: async body => body, log })
    ] as const)
    for (const [c, s] of pairs) {
      endpoints.push(c, s)
      await c.start()
      await s.start()
      await c.request(b.peerId, { warm: true })
    }
    // each _write or _writev of a socket is one write request to the kernel: count them
    const calls = { write: 0, writev: 0 }
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>
    const { _write: write, _writev: writev } = proto
    proto._write = function (this: unknown, ...args: unknown[]) { calls.write++; return write.apply(this, args) }
    proto._writev = function (this: unknown, ...args: unknown[]) { calls.writev++; return writev.apply(this, args) }
    const before = { ...socketWriteStats }
    try {
      const answers = await Promise.all(pairs.map(async ([c], i) => c.request(b.peerId, { i })))
      expect(answers).toEqual(pairs.map((_, i) => ({ i })))
    } finally {
      proto._write = write
      proto._writev = writev
    }
    const buffers = socketWriteStats.buffers - before.buffers
    // eight requests and eight answers: at least 32 buffers, in a handful of writes to the kernel
    expect(buffers).toBeGreaterThanOrEqual(32)
    expect(calls.write + calls.writev).toBeGreaterThan(0)
    expect(calls.write + calls.writev).toBeLessThanOrEqual(buffers / 4)

    // frames far past a socket's high-water mark and a Noise message (64 KiB): backpressure on a
    // corked socket, Noise messages split across reads, window updates owed mid-frame
    const big = Array.from({ length: 6 }, () => ({ blob: randomBytes(600_000).toString('base64') }))
    const echoed = await Promise.all(big.map(async body => client.request(b.peerId, body, { timeoutMs: 30_000 })))
    expect(echoed).toEqual(big)
  })

  it('Noise\'s reader takes messages split anywhere, and learns one is not yet whole without an exception', () => {
    // Noise's own decoder settings, with this length reader
    const decoder = new LengthPrefixedDecoder({ lengthDecoder: noiseFrameLength, encodingLength: () => 2, maxBufferSize: 16 * 1024 * 1024 })
    const messages = [randomBytes(1), randomBytes(300), randomBytes(65_535), randomBytes(2), randomBytes(70)]
    const wire = Buffer.concat(messages.flatMap(m => [Buffer.from([m.length >> 8, m.length & 0xff]), m]))
    const read: Buffer[] = []
    // one byte at a time, then in uneven pieces: each prefix split from its message, and split itself
    for (const size of [1, 3, 257, 4096]) {
      for (let at = 0; at < wire.length; at += size) {
        for (const chunk of decoder.decode(wire.subarray(at, at + size))) read.push(Buffer.from(chunk.subarray()))
      }
    }
    expect(read).toEqual([...messages, ...messages, ...messages, ...messages])
    // a buffer too short for a length reads as an empty message, which it does not hold: no throw
    expect(noiseFrameLength(new Uint8Array(0))).toBe(0)
    expect(noiseFrameLength(new Uint8Array([1]))).toBe(0)
    expect(noiseFrameLength(new Uint8Array([1, 2]))).toBe(258)
  })

  it('any protocol\'s stream sends a window update once half its receive window is used, not after every frame', async () => {
    net = await createTestnet(2, { baseDir: await tmp(), transport: 'tcp', tasks: false })
    await net.waitForFullMesh()
    const [a, b] = net.nodes
    if (a === undefined || b === undefined) throw new Error('two nodes expected')
    let inbound: Stream | undefined
    let received = 0
    await b.libp2p.handle(PROTOCOL, async stream => {
      inbound = stream
      const lp = lpStream(stream, { maxDataLength: 4_000_000 })
      while (true) received += (await lp.read()).byteLength
    })
    const out = await a.libp2p.dialProtocol(b.peerId, PROTOCOL)
    const lp = lpStream(out, { maxDataLength: 4_000_000 })
    await lp.write(new Uint8Array(1_000))
    await waitFor(() => received === 1_000, { what: 'the first frame' })
    const view = inbound as unknown as YamuxView
    // the frame was taken from the window and no update sent back for it
    expect(view.recvWindowCapacity).toBeLessThan(view.recvWindow)
    expect(view.recvWindow - view.recvWindowCapacity).toBeGreaterThanOrEqual(1_000)
    const sender = out as unknown as { sendWindowCapacity: number }
    const senderBefore = sender.sendWindowCapacity

    // past half the window, one update gives it all back, and the sender was never stalled
    const chunk = Math.ceil(view.recvWindow / 2)
    await lp.write(new Uint8Array(chunk))
    await waitFor(() => received === 1_000 + chunk, { what: 'the large frame' })
    await waitFor(() => view.recvWindowCapacity === view.recvWindow && sender.sendWindowCapacity >= senderBefore, { what: 'the window update' })
    await out.close()
    await b.libp2p.unhandle(PROTOCOL)
  })
})
