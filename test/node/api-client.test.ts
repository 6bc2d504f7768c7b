import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiRequest, resolveApiUrl } from '../../node/cli/client.js'
import { DEFAULT_API, DEFAULT_DATA_DIR } from '../../node/daemon/config.js'
import { existsSync, readFileSync } from 'node:fs'
import { runCli } from '../../sim/daemon-process.js'

/** The CLI's client against a node that takes connections and never answers, as a SIGSTOPped daemon does. */
describe('the CLI\'s API client', () => {
  let silent: Server
  const sockets: Socket[] = []
  let url: string

  beforeAll(async () => {
    silent = createServer(socket => { sockets.push(socket) })
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => silent.close(resolve))
  })

  it('tells a node that is there but silent from one that is not there', async () => {
    const stopped = await apiRequest(url, 'GET', '/v1/health', undefined, 300).catch((err: Error) => err)
    expect(stopped).toMatchObject({ name: 'NodeNotRunningError', message: expect.stringContaining(`the node at ${url} took the connection but did not answer GET /v1/health in 0.3 s`) })
    // a port nothing listens on: one just freed
    const free = createServer()
    await new Promise<void>(resolve => free.listen(0, '127.0.0.1', resolve))
    const closed = `http://127.0.0.1:${(free.address() as AddressInfo).port}`
    await new Promise(resolve => free.close(resolve))
    const gone = await apiRequest(closed, 'GET', '/v1/health', undefined, 300).catch((err: Error) => err)
    expect(gone).toMatchObject({ name: 'NodeNotRunningError', message: `no node answers at ${closed} (ECONNREFUSED); is the daemon running?` })
  })

  it('tells another server answering JSON at the address from an agentmesh node', async () => {
    // a mistyped port that reaches some other JSON API: its answers printed as undefined, and `dlq list` exited 0
    const other = createHttpServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"peers":null,"deadLetters":[{}]}') })
    await new Promise<void>(resolve => other.listen(0, '127.0.0.1', resolve))
    const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
    try {
      const err = await apiRequest(otherUrl, 'GET', '/v1/deadletter').catch((e: Error) => e)
      expect(err).toMatchObject({ name: 'ApiRequestError', message: `the server at ${otherUrl} is not an agentmesh node (its HTTP 200 answer to GET /v1/deadletter has no x-agentmesh-version header; or it is a node older than this CLI): check --api or --data` })
      const cli = await runCli(['dlq', 'list', '--api', otherUrl])
      expect(cli.code).toBe(1)
      expect(cli.stderr).toMatch(/is not an agentmesh node/)
    } finally {
      await new Promise(resolve => other.close(resolve))
    }
  })

  it('says a node.json that is not what a daemon writes is malformed, and a missing one that no node runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-nodefile-'))
    try {
      await expect(resolveApiUrl({ data: dir })).rejects.toMatchObject({ name: 'NodeNotRunningError' })
      const malformed = [['{bad', /not JSON/], ['[]', /not a JSON object/], ['"str"', /not a JSON object/], ['{"api":5}', /"api" is not an http\(s\) URL/], ['{"api":"http://127.0.0.1:1"}', /lacks "pid"/]] as const
      for (const [text, why] of malformed) {
        await writeFile(join(dir, 'node.json'), text)
        await expect(resolveApiUrl({ data: dir }), text).rejects.toMatchObject({ name: 'MalformedNodeFileError', message: expect.stringMatching(why) })
      }
      await writeFile(join(dir, 'node.json'), JSON.stringify({ peerId: 'p', addrs: [], api: 'http://127.0.0.1:7', pid: 1 }))
      expect(await resolveApiUrl({ data: dir })).toBe('http://127.0.0.1:7')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('names an address given with /v1, and an https:// one of a plain-HTTP API, for what they are', async () => {
    expect(await resolveApiUrl({ api: 'http://127.0.0.1:7950/proxy/' })).toBe('http://127.0.0.1:7950/proxy')
    // a node behind a proxy that mounts it under /v1 stays reachable: the hint comes with a 404 only
    const node = createHttpServer((req, res) => {
      res.writeHead(req.url === '/v1/health' ? 200 : 404, { 'content-type': 'application/json', 'x-agentmesh-version': '0' })
      res.end(req.url === '/v1/health' ? '{"ok":true}' : req.url === '/v1/v1/tasks/x' ? '{"error":{"name":"NOT_FOUND","message":"no task x"}}' : '{"error":{"name":"NOT_FOUND","message":"no route"}}')
    })
    await new Promise<void>(resolve => node.listen(0, '127.0.0.1', resolve))
    try {
      const base = `http://127.0.0.1:${(node.address() as AddressInfo).port}`
      expect(await apiRequest(base, 'GET', '/v1/health')).toEqual({ ok: true })
      await expect(apiRequest(`${base}/v1`, 'GET', '/v1/health')).rejects.toMatchObject({ name: 'ApiRequestError', message: `GET /v1/health: no route (the address ${base}/v1 ends in /v1, which every route has already: give it without)` })
      // behind a proxy that mounts the node under /v1, a 404 of a route that is there (no such task) is no address's fault
      await expect(apiRequest(`${base}/v1`, 'GET', '/v1/tasks/x')).rejects.toMatchObject({ name: 'ApiRequestError', message: 'GET /v1/tasks/x: no task x' })
    } finally {
      await new Promise(resolve => node.close(resolve))
    }
    const plain = createHttpServer((_req, res) => { res.end('{}') })
    await new Promise<void>(resolve => plain.listen(0, '127.0.0.1', resolve))
    try {
      const port = (plain.address() as AddressInfo).port
      // it said that no node answers there, while one did, in plain HTTP
      const err = await apiRequest(`https://127.0.0.1:${port}`, 'GET', '/v1/health', undefined, 5_000).catch((e: Error) => e)
      expect(err).toMatchObject({ name: 'NodeNotRunningError', message: expect.stringMatching(new RegExp(`^the server at https://127\\.0\\.0\\.1:${port} does not speak TLS .*use http://127\\.0\\.0\\.1:${port}`)) })
    } finally {
      plain.closeAllConnections()
      await new Promise(resolve => plain.close(resolve))
    }
  })

  describe('the environment', () => {
    afterEach(() => { vi.unstubAllEnvs() })

    it('takes AGENTMESH_API before a daemon on the default data dir, and an empty AGENTMESH_DATA or AGENTMESH_API as unset, as the daemon does', async () => {
      vi.stubEnv('AGENTMESH_DATA', '')
      vi.stubEnv('AGENTMESH_API', '127.0.0.1:9009')
      expect(await resolveApiUrl({})).toBe('http://127.0.0.1:9009')
      // the daemon's own bind address with port 0 ("any free one") names no node to reach: passed over
      vi.stubEnv('AGENTMESH_API', '127.0.0.1:0')
      expect(await resolveApiUrl({})).not.toBe('http://127.0.0.1:0')
      vi.stubEnv('AGENTMESH_API', 'ftp://x')
      await expect(resolveApiUrl({})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/^AGENTMESH_API "ftp:\/\/x"/) })
      // both empty: the default data dir's daemon, else the default address
      vi.stubEnv('AGENTMESH_API', '')
      const fromDefault = existsSync(join(DEFAULT_DATA_DIR, 'node.json')) ? JSON.parse(readFileSync(join(DEFAULT_DATA_DIR, 'node.json'), 'utf8')).api : `http://${DEFAULT_API}`
      expect(await resolveApiUrl({})).toBe(fromDefault)
    })

    it('a CLI command takes AGENTMESH_API over a daemon on the default data dir (HOME/.agentmesh)', async () => {
      const home = await mkdtemp(join(tmpdir(), 'agentmesh-home-'))
      try {
        await mkdir(join(home, '.agentmesh'))
        await writeFile(join(home, '.agentmesh', 'node.json'), JSON.stringify({ peerId: 'p', addrs: [], api: 'http://127.0.0.1:9008', pid: 1 }))
        const withEnv = await runCli(['status'], { env: { HOME: home, AGENTMESH_API: '127.0.0.1:9009', AGENTMESH_DATA: '' } })
        expect(withEnv.stderr).toMatch(/no node answers at http:\/\/127\.0\.0\.1:9009/)
        const without = await runCli(['status'], { env: { HOME: home, AGENTMESH_API: '', AGENTMESH_DATA: '' } })
        expect(without.stderr).toMatch(/no node answers at http:\/\/127\.0\.0\.1:9008/)
      } finally {
        await rm(home, { recursive: true, force: true })
      }
    })
  })
})
