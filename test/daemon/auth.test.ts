import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'

const TOKEN = 'k3y-for-tests-0123456789abcdef'

describe('who may use the doors: the bearer token', () => {
  const tmp = useTmpDirs()
  let daemon: DaemonProcess
  let tokenFile: string
  let dir: string

  beforeAll(async () => {
    // its own dir: the per-test ones are removed after each test, and the daemon lives through all
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-auth-'))
    tokenFile = join(dir, 'token')
    await writeFile(tokenFile, `${TOKEN}\n`)
    daemon = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--api-token-file', tokenFile, '--agents', 'echo'])
  }, 60_000)
  afterAll(async () => {
    daemon?.proc.kill('SIGKILL')
    await daemon?.exited
    await rm(dir, { recursive: true, force: true })
  })

  const get = async (path: string, headers: Record<string, string> = {}, method = 'GET', body?: unknown): Promise<Response> =>
    fetch(`${daemon.api}${path}`, { method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) })

  // every route, ours and every door's, and an unknown one: a wrong token must not learn which exist
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/v1/health'],
    ['GET', '/v1/tasks'],
    ['POST', '/v1/tasks', { capability: 'echo', input: 1 }],
    ['GET', '/v1/openapi.json'],
    ['GET', '/v1/models'],
    ['POST', '/v1/chat/completions', { model: 'x', messages: [{ role: 'user', content: 'hi' }] }],
    ['POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }],
    ['POST', '/a2a', { jsonrpc: '2.0', id: 1, method: 'tasks/get', params: { id: 'x' } }],
    ['GET', '/.well-known/agent-card.json'],
    ['GET', '/no/such/route']
  ]

  it.each(routes)('%s %s answers 401 without the token and with a wrong one', async (method, path, body) => {
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-wrong-token!!' }, { authorization: TOKEN }]
    for (const headers of attempts) {
      const res = await get(path, headers, method, body)
      expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401)
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="agentmesh"')
      const answer = await res.json()
      // the OpenAI door answers in OpenAI's error shape, which its client turns into AuthenticationError
      if (path.startsWith('/v1/models') || path.startsWith('/v1/chat')) expect(answer.error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' })
      else expect(answer.error.name).toBe('UNAUTHORIZED')
    }
  })

  it('says what was wrong: no token, another scheme than Bearer, or a wrong token', async () => {
    const message = async (headers: Record<string, string>): Promise<string> => (await (await get('/v1/health', headers)).json()).error.message
    expect(await message({})).toMatch(/needs a bearer token/)
    expect(await message({ authorization: `Basic ${Buffer.from(`me:${TOKEN}`).toString('base64')}` })).toMatch(/not a bearer token: send Authorization: Bearer <token>/)
    expect(await message({ authorization: TOKEN })).toMatch(/not a bearer token/)
    expect(await message({ authorization: 'Bearer wrong-token-wrong-token!!' })).toBe('the bearer token is wrong')
  })

  it('serves every route with the token, and counts the refusals', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` }
    expect((await get('/v1/health', auth)).status).toBe(200)
    const submitted = await get('/v1/tasks', auth, 'POST', { capability: 'echo', input: 'with token' })
    expect(submitted.status).toBe(202)
    const metrics = await (await get('/v1/metrics', auth)).json()
    expect(metrics.api.unauthorized).toBeGreaterThanOrEqual(routes.length * 3)
  })

  it('the CLI sends the token from --api-token-file or AGENTMESH_API_TOKEN, and says so when it is missing', async () => {
    const fromFile = await runCli(['submit', '--api', daemon.api, '--api-token-file', tokenFile, '--capability', 'echo', '--input', '"cli"', '--wait'])
    expect(fromFile.code, fromFile.stderr).toBe(0)
    expect(fromFile.stdout).toMatch(/cli/)
    const fromEnv = await runCli(['status', '--api', daemon.api], { env: { AGENTMESH_API_TOKEN: TOKEN } })
    expect(fromEnv.code, fromEnv.stderr).toBe(0)
    expect(fromEnv.stdout).toContain(daemon.peerId)
    const without = await runCli(['status', '--api', daemon.api], { env: { AGENTMESH_API_TOKEN: '' } })
    expect(without.code).toBe(1)
    expect(without.stderr).toMatch(/bearer token/)
  })

  it('refuses to start an API off loopback without a token, in one line', async () => {
    const dir = await tmp()
    // a documentation address (TEST-NET-1): if the check were missing the bind itself would fail, differently
    const r = await runCli(['node', '--data', join(dir, 'b'), '--api', '192.0.2.1:0'], { env: { AGENTMESH_API_TOKEN: '' } })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/reachable from other machines: give it a token/)
    // refused before the store is opened: no node key, so no new peer, was made on the way
    await expect(readdir(join(dir, 'b', 'store'))).rejects.toMatchObject({ code: 'ENOENT' })
    const short = join(dir, 'short')
    await writeFile(short, 'abc\n')
    const s = await runCli(['node', '--data', join(dir, 'c'), '--api', '127.0.0.1:0', '--api-token-file', short])
    expect(s.code).toBe(1)
    expect(s.stderr).toMatch(/at least 16 characters/)
    // a token variable that came out blank was read as none, and the API on loopback started open
    const blank = await runCli(['node', '--data', join(dir, 'd'), '--api', '127.0.0.1:0'], { env: { AGENTMESH_API_TOKEN: '   \t ' } })
    expect(blank.code).toBe(1)
    expect(blank.stderr).toMatch(/AGENTMESH_API_TOKEN is set but blank/)
    // and a client given it says so, not that the node wants a token
    const client = await runCli(['status', '--api', daemon.api], { env: { AGENTMESH_API_TOKEN: '   ' } })
    expect(client.code).toBe(1)
    expect(client.stderr).toMatch(/AGENTMESH_API_TOKEN is set but blank/)
    expect(client.stderr).not.toMatch(/no node answers/)
  })

  it('publishes an OpenAPI document of every route of its own API', async () => {
    const doc = await (await get('/v1/openapi.json', { authorization: `Bearer ${TOKEN}` })).json()
    expect(doc.openapi).toMatch(/^3\./)
    for (const path of ['/v1/tasks', '/v1/tasks/{id}', '/v1/tasks/{id}/result', '/v1/deadletter/{id}/redrive', '/v1/health', '/v1/metrics']) expect(doc.paths[path], path).toBeDefined()
    expect(doc.paths['/v1/tasks'].post.requestBody.content['application/json'].schema.anyOf).toHaveLength(2)
    expect(doc.paths['/v1/tasks'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['state', 'capability', 'limit']))
    expect(doc.paths['/v1/tasks/{id}/result'].get.parameters.map((p: { name: string }) => p.name)).toEqual(['id', 'wait'])
    expect(doc.paths['/v1/tasks'].post.responses['202']).toBeDefined()
    // a known idempotency key's task, or a submit with ?wait= that finished, is a 200
    expect(doc.paths['/v1/tasks'].post.responses['200']).toBeDefined()
    // each route's error statuses: those of its shape (a body, an id) and its own
    const statuses = (path: string, method: string): string[] => Object.keys(doc.paths[path][method].responses)
    expect(statuses('/v1/tasks', 'post')).toEqual(expect.arrayContaining(['400', '401', '413', '415', '422', '429', '503', 'default']))
    expect(statuses('/v1/tasks', 'post')).not.toContain('404')
    expect(statuses('/v1/tasks/{id}/signal', 'post')).toEqual(expect.arrayContaining(['400', '404', '409', '503']))
    expect(statuses('/v1/deadletter/{id}/redrive', 'post')).toEqual(expect.arrayContaining(['404', '409']))
    expect(statuses('/v1/tasks/{id}', 'get')).toEqual(expect.arrayContaining(['400', '401', '404', '503']))
    expect(statuses('/v1/health', 'get')).not.toContain('413')
    expect(doc.paths['/v1/tasks/{id}/signal'].post.responses['409'].description).toMatch(/NOT_WAITING/)
    // a route's own cause of a status is listed with its shape's, not instead of it
    expect(doc.paths['/v1/tasks/{id}/signal'].post.responses['503'].description).toMatch(/QUORUM_UNAVAILABLE.*NODE_STOPPING.*STORE_FAILED/)
    expect(doc.paths['/v1/tasks'].post.responses['429'].description).toMatch(/maxSubmitsInFlight.*maxUnfinishedTasks/)
    expect(doc.paths['/v1/tasks'].post.responses['429'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' })
    // the routes that take no body say so: nothing, or {} and no field
    expect(doc.paths['/v1/deadletter/{id}/redrive'].post.requestBody).toMatchObject({ required: false, content: { 'application/json': { schema: { type: 'object', additionalProperties: false } } } })
    // the event streams, served beside the JSON routes, are in it too
    expect(doc.paths['/v1/tasks/{id}/events'].get.responses['200'].content['text/event-stream']).toBeDefined()
    expect(doc.paths['/v1/events'].get.parameters.map((p: { name: string }) => p.name)).toEqual(['capability', 'state'])
    // it says what the server takes, where it said less: a tool that makes requests from it (a fuzzer)
    // had its "valid" ones refused
    const [one, many] = doc.paths['/v1/tasks'].post.requestBody.content['application/json'].schema.anyOf
    expect(one.properties.capability.pattern).toBe('^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')
    expect(many).toMatchObject({ type: 'array', minItems: 1, maxItems: 1000 })
    expect(doc.paths['/v1/tasks/{id}/result'].get.responses['202']).toBeDefined()
    expect(doc.paths['/v1/events'].get.parameters[1].schema.enum).toEqual(['pending', 'running', 'completed', 'failed', 'canceled', 'dead', ''])
    const record = doc.paths['/v1/memory/{collection}'].post.requestBody.content['application/json'].schema.anyOf[0]
    expect(record.properties.metadata.maxProperties).toBe(64)
    expect(doc.paths['/metrics'].get.responses['200'].content['text/plain']).toBeDefined()
    expect(doc.paths['/ui'].get.responses['200'].content['text/html']).toBeDefined()
    // the page is served without the token
    expect(doc.paths['/ui'].get.security).toEqual([])
    expect(doc.security).toEqual([{ bearer: [] }])
    // every $ref points inside the document (a validator refused a "#/$defs/..." left by zod)
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map(m => m[1] as string)
    expect(refs.length).toBeGreaterThan(0)
    for (const ref of refs) {
      const target = ref.replace(/^#\//, '').split('/').reduce<any>((node, key) => node?.[key], doc)
      expect(target, ref).toBeDefined()
    }
  })
})
