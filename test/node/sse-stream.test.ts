import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { openStream } from '../../node/api/sse-stream.js'
import { waitFor } from '../../sim/wait.js'

/** An event stream whose client stopped reading: cut off at its buffer limit, not grown without one. */
describe('an event stream\'s buffer (http.sseMaxBufferedBytes)', () => {
  it('cuts off a client that stopped reading once the node holds more than the limit for it', async () => {
    const limit = 65_536
    const chunk = `data: ${'x'.repeat(16_384)}\n\n`
    let written = 0
    let mostBuffered = 0
    let cut = false
    const app = Fastify()
    app.get('/events', async (_request, reply) => {
      const stream = openStream(reply, limit)
      stream.onClose(() => { cut = true })
      const push = (): void => {
        // bounded, so a stream that is never cut ends the test instead of the machine's memory
        if (stream.isClosed() || written > 256 * 1024 * 1024) return
        mostBuffered = Math.max(mostBuffered, reply.raw.writableLength)
        stream.write(chunk)
        written += chunk.length
        setImmediate(push)
      }
      push()
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1')
    try {
      socket.write('GET /events HTTP/1.1\r\nhost: x\r\n\r\n')
      // the client reads the first bytes, then nothing more: the kernel's buffers fill, then the node's
      await new Promise<void>(resolve => socket.once('data', () => { socket.pause(); resolve() }))
      await waitFor(() => cut, { timeoutMs: 30_000, what: 'the stalled stream cut off' })
      expect(written).toBeLessThan(256 * 1024 * 1024)
      // the node held at most the limit and the chunk that crossed it (with its chunked framing)
      expect(mostBuffered).toBeLessThanOrEqual(limit + chunk.length + 16)
      expect(mostBuffered).toBeGreaterThan(0)
    } finally {
      socket.destroy()
      await app.close()
    }
  })
})
