import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { ApiServer } from '../../node/api/server.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { errorOf, raw } from '../helpers/raw-http.js'
import type { Testnet } from '../../sim/testnet.js'

/**
 * Sends a request's head with `Expect: 100-continue`, then its body only if the server says 100;
 * resolves with every byte the server sent once it closes the connection (or after 5 s).
 */
async function expectContinue (port: number, head: string, body: string): Promise<string> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head))
    let text = ''
    const timer = setTimeout(() => socket.destroy(), 5_000)
    socket.on('data', (d: Buffer) => {
      text += String(d)
      if (text === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write(body)
    })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(text) })
  })
}

/** A submit as HTTP/1.1 bytes, kept alive (no Connection header): what a pipelining client sends. */
function submit (capability: string, headers = ''): string {
  const body = JSON.stringify({ capability, input: 1 })
  return `POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

describe('the API\'s HTTP framing: pipelined requests, Connection: close, transfer codings', () => {
  let net: Testnet
  let api: ApiServer
  let port: number

  const metrics = async (): Promise<any> => await (await fetch(`${api.url}/v1/metrics`)).json()
  const tasksOf = async (capability: string): Promise<unknown[]> => ((await (await fetch(`${api.url}/v1/tasks?capability=${capability}`)).json()) as { tasks: unknown[] }).tasks

  beforeAll(async () => {
    net = await createTestnet(1, { tasks: { ...FAST_TASKS, agents: [echoAgent] } })
    await net.ready()
    api = await ApiServer.listen(net.nodes[0]!, { port: 0 })
    port = Number(new URL(api.url).port)
  })
  afterAll(async () => {
    await api?.close()
    await net?.stop()
  })

  it.each([
    ['a body that is not JSON', 400, 'POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n{bad'],
    ['a body of another type, refused unread', 415, 'POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nabcd'],
    ['a transfer coding other than chunked', 501, 'POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n{"a"\r\n0\r\n\r\n'],
    ['an Expect other than 100-continue, answered before the router', 417, 'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: something\r\n\r\n']
  ])('runs no submit pipelined behind an answer that closes the connection (%s), and answers it not', async (_what, status, first) => {
    const capability = `pipelined.${status}.${Date.now()}`
    const before = (await metrics()).api
    const answer = await raw(port, first + submit(capability) + submit(capability, 'Idempotency-Key: second\r\n'))
    expect(answer.status, answer.head).toBe(status)
    expect(answer.head).toMatch(/connection: close/i)
    // answered before the router or after it, the answer names the node
    expect(answer.head).toMatch(/x-agentmesh-version: \d/i)
    errorOf(answer)
    // one answer only: the two submits behind it were neither answered nor run
    expect(answer.body).not.toMatch(/HTTP\/1\.1 \d{3}/)
    await waitFor(async () => (await metrics()).api.droppedAfterClose === before.droppedAfterClose + 2, { what: 'both pipelined submits to be dropped', timeoutMs: 10_000 })
    expect(await tasksOf(capability)).toEqual([])
    // dropped, not clients gone; the one answer is one error answer (the 417 was none)
    const after = (await metrics()).api
    expect(after.clientsGone).toBe(before.clientsGone)
    expect(after.errors - before.errors).toBe(1)
  })

  it('answers pipelined requests in turn on a connection kept alive', async () => {
    const capability = `pipelined.ok.${Date.now()}`
    const answer = await raw(port, submit(capability) + submit(capability, 'Idempotency-Key: x\r\n') + 'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
    expect(answer.status, answer.head).toBe(202)
    expect(answer.body.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 202', 'HTTP/1.1 200'])
    expect(await tasksOf(capability)).toHaveLength(2)
  })

  it('reads the body of a request waiting its turn: a large one pipelined behind a long poll is not timed out', async () => {
    // a body left unread stopped the socket, and the request timeout (1 s here) then answered 408
    const slow = await ApiServer.listen(net.nodes[0]!, { port: 0, requestTimeoutMs: 1_000 })
    try {
      const { id } = await net.nodes[0]!.tasks!.service.submit({ capability: 'nobody.runs.this', input: 1 })
      const capability = `pipelined.large.${Date.now()}`
      const body = JSON.stringify({ capability, input: 'x'.repeat(300_000) })
      const poll = `GET /v1/tasks/${id}/result?wait=2500 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
      const large = `POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
      const answer = await raw(Number(new URL(slow.url).port), poll + large, 20_000)
      expect(answer.status, answer.head).toBe(202)
      expect(answer.body.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 202'])
      expect(await tasksOf(capability)).toHaveLength(1)
    } finally {
      await slow.close()
    }
  })

  it('closes a stream\'s connection after its end when the client asked Connection: close', async () => {
    const done = await (await fetch(`${api.url}/v1/tasks?wait=10000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'echo', input: 'closed' }) })).json() as { id: string, state: string }
    expect(done.state).toBe('completed')
    const id = done.id
    // a stream's answer said keep-alive over the client's close, and the socket stayed open 72 s (the keep-alive timeout)
    const answer = await raw(port, `GET /v1/tasks/${id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 10_000)
    expect(answer.status, answer.head).toBe(200)
    expect(answer.head).not.toMatch(/keep-alive/i)
    // a stream writes its own head: it still names the node, as every answer of the API does
    expect(answer.head).toMatch(/x-agentmesh-version: \d/i)
    expect(answer.body).toMatch(/event: completed/)
    // the MCP SDK's stream says keep-alive itself: the connection closes all the same
    const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { input: 'closed' } } })
    const mcp = await raw(port, `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(call)}\r\n\r\n${call}`, 10_000)
    expect(mcp.status, mcp.head).toBe(200)
    expect(mcp.head).toMatch(/x-agentmesh-version: \d/i)
    expect(mcp.body).toMatch(/"result"/)
  })

  it('names a usable URL in the agent card whatever form the Host takes', async () => {
    const card = async (host: string): Promise<any> => JSON.parse((await raw(port, `GET /.well-known/agent-card.json HTTP/1.1\r\nHost: ${host}\r\nA2A-Version: 1.0\r\nConnection: close\r\n\r\n`)).body)
    // a port past 65535 is no URL a client can use: the card names the address the request came to
    expect((await card('127.0.0.1:99999')).supportedInterfaces[0].url).toBe(`${api.url}/a2a`)
    expect((await card(`127.000.000.001:${port}`)).supportedInterfaces[0].url).toBe(`http://127.0.0.1:${port}/a2a`)
    expect((await card(`localhost:${port}`)).supportedInterfaces[0].url).toBe(`http://localhost:${port}/a2a`)
  })

  it('refuses a body declared over the limit before the client sends it (Expect: 100-continue), and asks for one within it', async () => {
    const before = (await metrics()).api.badRequests['body-too-large']
    const head = (length: number): string => `POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`
    // Node answered 100 to any size: the client then uploaded it all only to get 413
    const over = await expectContinue(port, head(1_000_000_000), '')
    expect(over).toMatch(/^HTTP\/1\.1 413 /)
    expect(over).toMatch(/connection: close/i)
    expect(over).toMatch(/x-agentmesh-version: \d/i)
    expect(JSON.parse(over.slice(over.indexOf('\r\n\r\n') + 4)).error.name).toBe('PAYLOAD_TOO_LARGE')
    expect((await metrics()).api.badRequests['body-too-large']).toBe(before + 1)
    // the OpenAI door's refusal in OpenAI's shape, as without Expect (curl sends it past 1 MiB)
    const door = await expectContinue(port, head(1_000_000_000).replace('/v1/tasks', '/v1/chat/completions'), '')
    expect(door).toMatch(/^HTTP\/1\.1 413 /)
    expect(JSON.parse(door.slice(door.indexOf('\r\n\r\n') + 4))).toEqual({ error: { message: expect.stringMatching(/^body exceeds the limit/), type: 'invalid_request_error', param: null, code: 'request_too_large' } })
    const body = JSON.stringify({ capability: `continue.${Date.now()}`, input: 1 })
    const within = await expectContinue(port, head(Buffer.byteLength(body)), body)
    expect(within).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 202 /)
  })
})
