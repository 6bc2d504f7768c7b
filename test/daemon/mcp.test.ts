import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { PACKAGE_ROOT } from '../../node/package-root.js'
import { malformedRequest } from '../../protocols/mcp/server.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js'

const TOKEN = 'mcp-test-token-0123456789'
const auth = { authorization: `Bearer ${TOKEN}` }

/** The stdio command of the real `@modelcontextprotocol/server-everything`, quoted as a shell would take it. */
function everythingCommand (): string {
  const dir = join(PACKAGE_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything')
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  return `"${process.execPath}" "${join(dir, pkg.bin['mcp-server-everything'])}" stdio`
}

async function httpClient (api: string, headers: Record<string, string> = auth): Promise<Client> {
  const client = new Client({ name: 'mcp-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${api}/mcp`), { requestInit: { headers } }))
  return client
}

const textOf = (r: CallToolResult): string => r.content.flatMap(c => c.type === 'text' ? [c.text] : []).join('\n')
const taskOf = (r: CallToolResult): string => (r._meta as Record<string, string>)['agentmesh/task'] as string

/** One line naming the problem, a non-zero exit, and no stack trace. */
function expectOneLineError (r: { code: number | null, stderr: string }, pattern: RegExp): void {
  expect(r.code).not.toBe(0)
  expect(r.stderr).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  expect(r.stderr.trim().split('\n').filter(l => l.startsWith('agentmesh:'))).toHaveLength(1)
}

describe('MCP both ways, between real daemons', () => {
  const running: DaemonProcess[] = []
  const clients: Client[] = []
  let dir: string
  /** a node offering nothing itself: every tool it serves is another peer's */
  let a: DaemonProcess
  /** the built-ins, a real MCP server over stdio, and another mesh's /mcp over HTTP */
  let b: DaemonProcess
  /** a node of another mesh, reached by b only as an MCP server */
  let other: DaemonProcess

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-mcp-'))
    const env = { AGENTMESH_API_TOKEN: TOKEN }
    other = await startDaemonProcess(['--data', join(dir, 'other'), '--api', '127.0.0.1:0', '--mesh', 'other', '--agents', 'echo'])
    running.push(other)
    b = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0',
      '--mcp-server', `everything=${everythingCommand()}`, '--mcp-server', `other=${other.api}/mcp`], { env, timeoutMs: 40_000 })
    running.push(b)
    a = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--agents', 'none', '--bootstrap', b.addrs[0] as string], { env })
    running.push(a)
    const client = await httpClient(a.api)
    clients.push(client)
    await waitFor(async () => (await client.listTools()).tools.some(t => t.name === 'mcp.everything.echo'), { what: 'a to see b\'s MCP tools', timeoutMs: 30_000 })
  }, 90_000)

  afterAll(async () => {
    await Promise.all(clients.map(async c => c.close().catch(() => {})))
    for (const d of running) d.proc.kill('SIGKILL')
    await Promise.all(running.map(async d => d.exited))
    await rm(dir, { recursive: true, force: true })
  })

  it('b offers each tool of the MCP servers as mcp.NAME.TOOL', () => {
    const offered = b.output().match(/^capabilities: (.+)$/m)?.[1]?.split(', ') ?? []
    expect(offered).toEqual(expect.arrayContaining(['echo', 'mcp.everything.echo', 'mcp.everything.get-sum', 'mcp.other.echo']))
  })

  it('lists the mesh\'s capabilities as tools, another peer\'s included, each with an object schema', async () => {
    const { tools } = await (clients[0] as Client).listTools()
    const names = tools.map(t => t.name)
    expect(names).toEqual(expect.arrayContaining(['echo', 'sleep', 'fail', 'text.wordcount', 'hash.sha256', 'mapreduce', 'mcp.everything.echo', 'mcp.everything.get-sum', 'mcp.other.echo']))
    expect(new Set(names).size).toBe(names.length)
    for (const tool of tools) expect(tool.inputSchema.type, tool.name).toBe('object')
    const echo = tools.find(t => t.name === 'mcp.everything.echo')
    expect(echo?.inputSchema.properties).toHaveProperty('message')
    expect(echo?.description).toMatch(/echo/i)
  })

  it('runs a tool that only another peer offers, as a task of this node', async () => {
    const result = await (clients[0] as Client).callTool({ name: 'text.wordcount', arguments: { input: 'a b a' } }) as CallToolResult
    expect(result.isError).not.toBe(true)
    expect(result.structuredContent).toEqual({ counts: { a: 2, b: 1 }, words: 3 })
    const task = await (await fetch(`${a.api}/v1/tasks/${taskOf(result)}`, { headers: auth })).json()
    expect(task.submitter).toBe(a.peerId)
    expect(task.executor).toBe(b.peerId)
    // each attempt may take the door's attemptTimeoutMs (5 minutes), not the API's 60 s default,
    // which aborted and restarted every tool that ran longer, for ever
    expect(task.timeoutMs).toBe(300_000)
  })

  it('a task on another peer calls the real MCP server and gets its answer', async () => {
    const client = clients[0] as Client
    const echo = await client.callTool({ name: 'mcp.everything.echo', arguments: { message: 'hello mesh' } }) as CallToolResult
    expect(textOf(echo)).toBe('Echo: hello mesh')
    // the same through the plain API: a task submitted on a, run on b
    const submit = await (await fetch(`${a.api}/v1/tasks`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'mcp.everything.get-sum', input: { a: 2, b: 40 } }) })).json()
    const done = await (await fetch(`${a.api}/v1/tasks/${submit.id as string}/result?wait=20000`, { headers: auth })).json()
    expect(done.state).toBe('completed')
    expect(done.result).toMatch(/\b42\b/)
  })

  it('hands an MCP tool\'s image on as an image block, not as its JSON in a text block', async () => {
    const image = await (clients[0] as Client).callTool({ name: 'mcp.everything.get-tiny-image', arguments: {} }) as CallToolResult
    expect(image.isError).not.toBe(true)
    expect(image.content).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'image', mimeType: 'image/png', data: expect.any(String) })]))
    expect(taskOf(image)).toMatch(/^[0-9a-f]{64}$/)
  })

  it('reaches an MCP server by URL (another mesh\'s /mcp)', async () => {
    const result = await (clients[0] as Client).callTool({ name: 'mcp.other.echo', arguments: { input: { x: 1 } } }) as CallToolResult
    expect(result.isError).not.toBe(true)
    expect(result.structuredContent).toEqual({ x: 1 })
  })

  it('sends progress notifications while the task runs', async () => {
    const seen: Progress[] = []
    const result = await (clients[0] as Client).callTool({ name: 'sleep', arguments: { ms: 3_000 } }, undefined, { onprogress: p => { seen.push(p) }, resetTimeoutOnProgress: true }) as CallToolResult
    expect(result.structuredContent).toEqual({ slept: 3_000 })
    expect(seen.length).toBeGreaterThanOrEqual(2)
    expect(seen[0]?.message).toContain(taskOf(result))
    expect(seen.slice(1).some(p => /running|pending/.test(p.message ?? ''))).toBe(true)
    for (let i = 1; i < seen.length; i++) expect(seen[i]?.progress).toBeGreaterThan(seen[i - 1]?.progress as number)
  })

  it('forwards the progress a tool on another peer reports, MCP server to MCP client', async () => {
    const seen: Progress[] = []
    const result = await (clients[0] as Client).callTool({ name: 'mcp.everything.trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, { onprogress: p => { seen.push(p) } }) as CallToolResult
    expect(result.isError).not.toBe(true)
    expect(textOf(result)).toMatch(/Steps: 4/)
    // everything's own notifications, reported on b by the agent and streamed to a, the submitter
    const forwarded = seen.filter(p => /"total":4/.test(p.message ?? ''))
    expect(forwarded.length, JSON.stringify(seen)).toBeGreaterThanOrEqual(1)
  })

  it('a task that fails, or an MCP tool that refuses, is a tool error with the reason', async () => {
    const client = clients[0] as Client
    const failed = await client.callTool({ name: 'fail', arguments: { times: 0, unrecoverable: true, message: 'no luck today' } }) as CallToolResult
    expect(failed.isError).toBe(true)
    expect(textOf(failed)).toMatch(/dead: no luck today/)
    const refused = await client.callTool({ name: 'mcp.everything.get-sum', arguments: { a: 'two' } }) as CallToolResult
    expect(refused.isError).toBe(true)
    expect(textOf(refused)).toMatch(/get-sum/)
    // arguments the tool's published schema refuses make no task that could only die of them
    for (const [name, args, problem] of [['sleep', { ms: 'soon' }, /^invalid arguments for sleep: ms: /], ['text.wordcount', {}, /^invalid arguments for text\.wordcount: /], ['text.wordcount', { input: 'a b', bogus: 1 }, /^invalid arguments for text\.wordcount: only "input" is taken .*"bogus"/], ['mcp.everything.get-sum', { a: 'two' }, /^invalid arguments for mcp\.everything\.get-sum: a: /]] as const) {
      const bad = await client.callTool({ name, arguments: args }) as CallToolResult
      expect({ isError: bad.isError, text: textOf(bad) }).toEqual({ isError: true, text: expect.stringMatching(problem) })
      expect(bad._meta?.['agentmesh/task']).toBeUndefined()
    }
  })

  it('an unknown tool is a protocol error, counted as the door\'s refusal', async () => {
    const doorRefusals = async (): Promise<number> => ((await (await fetch(`${a.api}/v1/metrics`, { headers: auth })).json()) as any).api.badRequests.door
    const before = await doorRefusals()
    await expect((clients[0] as Client).callTool({ name: 'no.such.tool', arguments: {} })).rejects.toThrow(/^MCP error -32602: unknown tool no\.such\.tool/)
    expect(await doorRefusals()).toBe(before + 1)
  })

  it('refuses a batch that gives two calls one id, and runs neither (the SDK ran both and answered one)', async () => {
    const call = (input: string): unknown => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { input } } })
    const marker = `dup-${Date.now()}`
    const res = await fetch(`${a.api}/mcp`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify([call(`${marker}-a`), call(`${marker}-b`)]) })
    expect({ status: res.status, json: await res.json() }).toMatchObject({ status: 400, json: { id: null, error: { code: -32600, message: expect.stringMatching(/repeats the id 1/) } } })
    // answered before any call ran: no task of the node holds either input
    const tasks = ((await (await fetch(`${a.api}/v1/tasks?capability=echo&limit=10000`, { headers: auth })).json()) as any).tasks as Array<{ input: unknown }>
    expect(tasks.filter(t => JSON.stringify(t.input).includes(marker))).toEqual([])
  })

  it('/mcp needs the bearer token like every other route', async () => {
    const res = await fetch(`${a.api}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) })
    expect(res.status).toBe(401)
    await expect(httpClient(a.api, {})).rejects.toThrow()
  })

  it('answers every method but POST with 405 and Allow: POST (a stateless server)', async () => {
    for (const method of ['GET', 'DELETE', 'PUT', 'PATCH', 'OPTIONS']) {
      const res = await fetch(`${a.api}/mcp`, { method, headers: auth })
      expect(res.status, method).toBe(405)
      expect(res.headers.get('allow'), method).toBe('POST')
      expect((await res.json()).error.message, method).toMatch(/POST only/)
    }
    // one that says JSON and sends no body (a 400 for its body before)
    for (const method of ['DELETE', 'PUT', 'PATCH', 'OPTIONS']) {
      const res = await fetch(`${a.api}/mcp`, { method, headers: { ...auth, 'content-type': 'application/json' } })
      expect(res.status, method).toBe(405)
      expect(res.headers.get('allow'), method).toBe('POST')
    }
  })

  it('answers a body it cannot parse with a JSON-RPC error, and keeps serving', async () => {
    const post = async (body: string, type = 'application/json'): Promise<{ status: number, json: any }> => {
      const res = await fetch(`${a.api}/mcp`, { method: 'POST', headers: { ...auth, 'content-type': type, accept: 'application/json, text/event-stream' }, body })
      return { status: res.status, json: await res.json() }
    }
    const notJson = async (): Promise<number> => ((await (await fetch(`${a.api}/v1/metrics`, { headers: auth })).json()) as any).api.badRequests['not-json']
    const before = await notJson()
    expect(await post('{"jsonrpc": "2.0", "id": 1, "method": ')).toMatchObject({ status: 400, json: { jsonrpc: '2.0', id: null, error: { code: -32700 } } })
    // counted under api.badRequests by reason, as the same body is on every other route
    expect(await notJson()).toBe(before + 1)
    expect(await post('[['.repeat(200) + ']]'.repeat(200))).toMatchObject({ status: 400, json: { error: { code: -32700, message: expect.stringMatching(/nest/) } } })
    expect(await post('{}', 'text/plain')).toMatchObject({ status: 415, json: { error: { code: -32600 } } })
    // a tools/call of the wrong shape is invalid params with the reason, not the SDK's internal error
    expect(await post(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: [1] } }))).toMatchObject({ status: 200, json: { id: 7, error: { code: -32602, message: expect.stringMatching(/^invalid params: params\.arguments: /) } } })
    expect(await post(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call' }))).toMatchObject({ json: { id: 8, error: { code: -32602, message: expect.stringMatching(/params/) } } })
    // so is an initialize without its params, and each is counted as the door's refusal
    const doorRefusals = async (): Promise<number> => ((await (await fetch(`${a.api}/v1/metrics`, { headers: auth })).json()) as any).api.badRequests.door
    const refused = await doorRefusals()
    expect(await post(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'initialize', params: {} }))).toMatchObject({ status: 200, json: { id: 9, error: { code: -32602, message: expect.stringMatching(/^invalid params: params\.protocolVersion: /) } } })
    expect(await doorRefusals()).toBe(refused + 1)
    expect(await post('[]')).toMatchObject({ status: 400, json: { id: null, error: { code: -32600 } } })
    // valid JSON that is not a JSON-RPC message is an invalid request, not a parse error
    for (const body of ['null', '"x"', '42', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: null }), JSON.stringify([{ jsonrpc: '2.0', id: 2, method: 'tools/list' }, 'x'])]) {
      expect(await post(body), body).toMatchObject({ status: 400, json: { error: { code: -32600, message: expect.stringMatching(/^invalid request: not a JSON-RPC 2\.0 message/) } } })
    }
    // no body at all: with no content-type it is the API's 415, with one an unparsable body; never a bug's 500
    const internalErrors = async (): Promise<number> => ((await (await fetch(`${a.api}/v1/metrics`, { headers: auth })).json()) as any).api.internalErrors
    const bugs = await internalErrors()
    const bare = await fetch(`${a.api}/mcp`, { method: 'POST', headers: { ...auth, accept: 'application/json, text/event-stream' } })
    expect({ status: bare.status, json: await bare.json() }).toMatchObject({ status: 415, json: { jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringMatching(/application\/json/) } } })
    expect(await post('')).toMatchObject({ status: 400, json: { id: null, error: { code: -32700 } } })
    expect(await internalErrors()).toBe(bugs)
    // and the check itself takes a missing body as no message (it had found it, and read its method)
    expect(malformedRequest(undefined)).toMatchObject({ code: -32600 })
    expect((await (clients[0] as Client).listTools()).tools.length).toBeGreaterThan(0)
  })

  it('refuses a "__proto__" key at the top of a call\'s arguments as a tool error, as one nested deeper, and runs no task', async () => {
    // the SDK's schema copied arguments key by key, and that key set a prototype instead: it was dropped, and the task ran
    const res = await fetch(`${a.api}/mcp`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"__proto__":{"a":1}}}}' })
    const text = await res.text()
    const answer = JSON.parse(text.split('\n').find(l => l.startsWith('data: '))?.slice(6) ?? text)
    expect(answer).toMatchObject({ id: 9, result: { isError: true, content: [{ type: 'text', text: expect.stringMatching(/^cannot submit echo: input is not .*"__proto__"/) }] } })
    // the same over the SDK's own client (it sends the key as JSON.parse made it, an own key)
    const nested = await (clients[0] as Client).callTool({ name: 'echo', arguments: JSON.parse('{"x":{"__proto__":{"a":1}}}') }) as CallToolResult
    expect(nested.isError).toBe(true)
    const top = await (clients[0] as Client).callTool({ name: 'echo', arguments: JSON.parse('{"__proto__":{"a":1}}') }) as CallToolResult
    expect(top.isError).toBe(true)
    expect(textOf(top)).toBe(textOf(nested))
  })

  it('serves the same tools over stdio with `agentmesh mcp --api URL`', async () => {
    const tokenFile = join(dir, 'token')
    await writeFile(tokenFile, `${TOKEN}\n`)
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--api', a.api, '--api-token-file', tokenFile, '--progress-interval-ms', '200', '--attempt-timeout-ms', '90000'], stderr: 'pipe' })
    let stderr = ''
    transport.stderr?.on('data', d => { stderr += String(d) })
    const client = new Client({ name: 'mcp-stdio-test', version: '1.0.0' })
    const errors: Error[] = []
    // anything on stdout that is not MCP would show up here
    client.onerror = err => { errors.push(err) }
    clients.push(client)
    await client.connect(transport)
    const { tools } = await client.listTools()
    expect(tools.map(t => t.name)).toEqual(expect.arrayContaining(['echo', 'text.wordcount', 'mcp.everything.echo']))
    for (const tool of tools) expect(tool.inputSchema.type, tool.name).toBe('object')
    const echo = await client.callTool({ name: 'mcp.everything.echo', arguments: { message: 'over stdio' } }) as CallToolResult
    expect(textOf(echo)).toBe('Echo: over stdio')
    expect((await (await fetch(`${a.api}/v1/tasks/${taskOf(echo)}`, { headers: auth })).json()).timeoutMs).toBe(90_000)
    const seen: Progress[] = []
    const slept = await client.callTool({ name: 'sleep', arguments: { ms: 1_000 } }, undefined, { onprogress: p => { seen.push(p) } }) as CallToolResult
    expect(slept.structuredContent).toEqual({ slept: 1_000 })
    expect(seen.length).toBeGreaterThanOrEqual(2)
    const failed = await client.callTool({ name: 'fail', arguments: { times: 0, unrecoverable: true } }) as CallToolResult
    expect(failed.isError).toBe(true)
    // a call the client gives up on (the SDK sends notifications/cancelled) cancels its task: over
    // stdio one server sees the whole connection, as the README says
    let sleeper: string | undefined
    const abandoned = client.callTool({ name: 'sleep', arguments: { ms: 60_000 } }, undefined, { onprogress: p => { sleeper ??= p.message?.match(/submitted as task ([0-9a-f]{64})/)?.[1] }, timeout: 5_000 })
    await expect(abandoned).rejects.toMatchObject({ message: expect.stringMatching(/timed out/i) })
    expect(sleeper).toBeDefined()
    await waitFor(async () => (await (await fetch(`${a.api}/v1/tasks/${sleeper as string}`, { headers: auth })).json() as any).state === 'canceled', { what: 'the abandoned call\'s task to be canceled', timeoutMs: 15_000 })
    await client.close()
    // a progress notification already on its way when the client gave up the call meets a token the
    // client has dropped (beside a busy loop, once): MCP's own race, which the client reports and
    // ignores. Anything else on the connection is a fault
    const raced = (e: Error): boolean => e.message.startsWith('Received a progress notification for an unknown token') && e.message.includes('running (')
    expect(errors.filter(e => !raced(e)), stderr).toEqual([])
    expect(stderr).not.toMatch(/warning|error/i)
  })

  it('over stdio, answers a line it cannot read and a call with unfit params, as JSON-RPC says', async () => {
    const tokenFile = join(dir, 'token')
    await writeFile(tokenFile, `${TOKEN}\n`)
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'pipe', version: '1' } } }
    const child = spawn(process.execPath, [BIN, 'mcp', '--api', a.api, '--api-token-file', tokenFile], { stdio: ['pipe', 'pipe', 'pipe'] })
    try {
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', d => { stdout += String(d) })
      child.stderr.on('data', d => { stderr += String(d) })
      const answers = (): any[] => stdout.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l))
      child.stdin.write([
        JSON.stringify(init),
        '{"jsonrpc": "2.0", "id": 2, oops',
        JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { arguments: {} } }),
        '[]',
        // JSON.parse reads 1e309 as Infinity, which the request to the API wrote as null; a deep nesting overflowed it
        '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"x":1e309}}}',
        `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"d":${'['.repeat(5_000)}${']'.repeat(5_000)}}}}`
      ].join('\n') + '\n')
      await waitFor(() => answers().length >= 6, { what: 'six answers', timeoutMs: 20_000 })
      for (const id of [4, 5]) expect(answers().find(m => m.id === id)).toMatchObject({ result: { isError: true, content: [{ text: expect.stringMatching(/^cannot submit echo: input is not a JSON value/) }] } })
      expect(answers().find(m => m.id === 1)).toMatchObject({ result: { serverInfo: { name: 'agentmesh' } } })
      expect(answers().filter(m => m.id === null).map(m => m.error.code).sort((x, y) => x - y)).toEqual([-32700, -32600])
      expect(answers().find(m => m.id === 3)).toMatchObject({ error: { code: -32602, message: expect.stringMatching(/name/) } })
      // each refused line is one line on stderr (a ZodError's message was pages of JSON)
      await waitFor(() => stderr.split('\n').filter(l => l.startsWith('agentmesh: mcp: ')).length >= 2, { what: 'both refusals told on stderr' })
      expect(stderr.trim().split('\n').filter(l => !l.startsWith('agentmesh: mcp: '))).toEqual([])
      expect(stderr).toMatch(/^agentmesh: mcp: invalid request: not a JSON-RPC 2\.0 message$/m)
      // closing stdin is MCP's shutdown over stdio: the command exits cleanly
      const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
      child.stdin.end()
      expect(await exited).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  })
})

describe('MCP servers of a node: start-up and stop', () => {
  it('a bad --mcp-server value, or a server that does not start, is one clear line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-mcp-'))
    try {
      expectOneLineError(await runCli(['node', '--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--mcp-server', 'no-equals-sign']), /--mcp-server takes NAME=COMMAND or NAME=URL/)
      expectOneLineError(await runCli(['node', '--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--mcp-server', 'x=node "unclosed']), /--mcp-server x: unclosed "/)
      expectOneLineError(await runCli(['node', '--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--mcp-server', 'bad=/nonexistent/mcp-server']), /MCP server "bad" \(\/nonexistent\/mcp-server\) did not start: ENOENT/)
      const exits = `"${process.execPath}" -e "process.stderr.write('cannot open the database\\n'); process.exit(3)"`
      expectOneLineError(await runCli(['node', '--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--mcp-server', `db=${exits}`]), /MCP server "db" .* did not start: .*cannot open the database/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it('a stopped node stops the MCP servers it started; a config file names them too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-mcp-'))
    try {
      const config = join(dir, 'config.json')
      const server = everythingCommand().match(/"([^"]+)" "([^"]+)" stdio/) as RegExpMatchArray
      await writeFile(config, JSON.stringify({ mcpServers: { everything: { command: server[1], args: [server[2], 'stdio'] } } }))
      const d = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--config', config], { timeoutMs: 40_000 })
      expect(d.output()).toMatch(/^capabilities: .*mcp\.everything\.echo/m)
      const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(d.proc.pid)], { encoding: 'utf8' }).trim().split(/\s+/).map(Number)
      expect(children.length).toBeGreaterThan(0)
      d.proc.kill('SIGTERM')
      expect(await d.exited, d.output()).toBe(0)
      await waitFor(() => children.every(pid => !alive(pid)), { what: 'the MCP server to exit with its node' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
