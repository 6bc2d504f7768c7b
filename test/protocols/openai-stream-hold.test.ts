import { createServer } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { OpenAIGateway } from '../../protocols/openai/index.js'
import { waitFor } from '../../sim/wait.js'
import type { GatewayBackend, TaskOutcome } from '../../protocols/openai/index.js'
import type { Server } from 'node:http'

const TASK = 'a'.repeat(64)

/**
 * The gateway over a mesh whose one task stays unfinished, with no token, until `finish`; the
 * mesh's own side of a stream is tested with daemons in test/daemon/openai.test.ts.
 */
function quietMesh (): { backend: GatewayBackend, stopping: AbortController, finish: () => void, subscribed: () => boolean } {
  const stopping = new AbortController()
  let finish!: () => void
  const finished = new Promise<TaskOutcome>(resolve => { finish = () => { resolve({ done: true, state: 'completed', result: { text: 'done', usage: { prompt: 1, completion: 1, total: 2 } } }) } })
  let subscribed = false
  const backend: GatewayBackend = {
    peers: () => [{ capabilities: [{ name: 'llm.chat.m', model: 'm' }] }],
    submit: async () => TASK,
    wait: async (_id, waitMs) => Promise.race([finished, new Promise<TaskOutcome>(resolve => setTimeout(() => { resolve({ done: false }) }, waitMs))]),
    cancel: async () => {},
    subscribe: () => { subscribed = true; return () => {} },
    stopping: stopping.signal
  }
  return { backend, stopping, finish, subscribed: () => subscribed }
}

describe('a streamed completion held back for its first token', () => {
  let server: Server | undefined
  afterEach(async () => { await new Promise(resolve => server?.close(resolve) ?? resolve(undefined)) })

  it('starts when the node begins to stop, so the client has the task id before the stop cuts it', async () => {
    const mesh = quietMesh()
    // a hold far longer than the test: only the stop can end it
    const gateway = new OpenAIGateway(mesh.backend, { streamHoldMs: 600_000, keepaliveMs: 600_000 })
    server = createServer((req, res) => {
      void (async () => {
        const { req: body, id, meta, deadline } = await gateway.start({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] })
        await gateway.stream(body, id, meta, deadline, res, () => {})
      })()
    })
    await new Promise<void>(resolve => server!.listen(0, '127.0.0.1', resolve))
    let headed = false
    const answer = fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`, { method: 'POST', signal: AbortSignal.timeout(20_000) }).then(res => { headed = true; return res })
    await waitFor(() => mesh.subscribed(), { what: 'the stream to wait for its first token', timeoutMs: 10_000 })
    expect(headed).toBe(false)
    mesh.stopping.abort()
    const res = await answer
    expect(res.status).toBe(200)
    expect(res.headers.get('x-agentmesh-task')).toBe(TASK)
    mesh.finish()
    expect(await res.text()).toMatch(/data: \[DONE\]/)
  })
})
