import { createServer } from 'node:net'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { BIN, runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'
import type { Server } from 'node:net'

/** One line naming the problem, a non-zero exit, and no stack trace. */
function expectOneLineError (r: { code: number | null, stderr: string }, pattern: RegExp): void {
  expect(r.code).not.toBe(0)
  expect(r.stderr).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  expect(r.stderr.trim().split('\n').filter(l => !l.startsWith('npm warn'))).toHaveLength(1)
}

describe('agentmesh CLI', () => {
  const tmp = useTmpDirs()
  const running: DaemonProcess[] = []
  const servers: Server[] = []
  afterEach(() => {
    for (const d of running.splice(0)) d.proc.kill('SIGKILL')
    for (const s of servers.splice(0)) s.close()
  })

  async function occupiedPort (): Promise<number> {
    const server = createServer()
    servers.push(server)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    return (server.address() as { port: number }).port
  }

  it.each([
    [['node', '--no-such-flag'], /unknown option/],
    [['node', '--listen', '/ip4/999.1.1.1/tcp/1'], /not a valid multiaddr/],
    [['node', '--bootstrap', 'nonsense'], /not a valid multiaddr/],
    [['node', '--bootstrap', '/ip4/127.0.0.1/tcp/4001'], /has no \/p2p\/<peer id>/],
    [['node', '--log-level', 'loud'], /logLevel/],
    [['node', '--api', 'nope'], /HOST:PORT/],
    [['node', '--config', '/nonexistent/agentmesh.json'], /cannot read config file/],
    [['node', '--swarm-key', '/nonexistent/swarm.key'], /cannot read swarm key/],
    [['status', '--data', '/nonexistent/dir'], /no node is running/],
    [['status', '--api', 'ftp://127.0.0.1:1'], /--api "ftp:\/\/127\.0\.0\.1:1" is not an http\(s\) URL/],
    [['status', '--api', 'http://127.0.0.1:99999'], /is not an http\(s\) URL or HOST:PORT/],
    [['frobnicate'], /unknown command/]
  ])('%j fails with one clear line', async (args, pattern) => {
    const dir = await tmp()
    expectOneLineError(await runCli([...args, ...(args[0] === 'node' ? ['--data', join(dir, 'd')] : [])]), pattern)
  })


  it('stops quietly, exit 0, when the reader of its output has gone (`agentmesh ... | head`)', async () => {
    const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] })
    // the pipe is closed before the first write: that write fails with EPIPE
    child.stdout.destroy()
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const [code] = await once(child, 'exit') as [number | null]
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
  })

  it('a daemon whose output reader has gone keeps running and serving', async () => {
    const dir = await tmp()
    const child = spawn(process.execPath, [BIN, 'node', '--data', join(dir, 'n'), '--api', '127.0.0.1:0', '--agents', 'echo'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.destroy()
    let exited: number | null | undefined
    child.on('exit', code => { exited = code })
    try {
      const api = await waitFor(async () => JSON.parse(await readFile(join(dir, 'n', 'node.json'), 'utf8').catch(() => 'null'))?.api as string | undefined, { what: 'node.json', timeoutMs: 20_000 })
      // its start-up lines went to the closed pipe after node.json was written: it answers a task after them
      const res = await fetch(`${api}/v1/tasks?wait=10000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'echo', input: 'still here' }) })
      expect({ status: res.status, result: (await res.json()).result, exited }).toEqual({ status: 200, result: 'still here', exited: undefined })
    } finally {
      child.kill('SIGKILL')
    }
  })
  it('logs to stderr what an operator acts on: a bootstrap peer not answering, peers joining and leaving', async () => {
    const dir = await tmp()
    const config = join(dir, 'config.json')
    await writeFile(config, JSON.stringify({ tasks: { presenceIntervalMs: 300 } }))
    // nothing listens on port 1: this bootstrap peer never answers
    const nowhere = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'
    const a = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--config', config, '--bootstrap', nowhere, '--log-format', 'json'])
    running.push(a)
    const events = (): any[] => a.output().split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l))
    const unreachable = await waitFor(() => events().find(e => e.event === 'bootstrap-unreachable'), { what: 'a line saying the bootstrap peer does not answer' })
    expect(unreachable).toMatchObject({ level: 30 + 10, addrs: [nowhere], attempt: 1 })
    expect(unreachable.msg).toContain(nowhere)
    const b = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0', '--config', config, '--bootstrap', a.addrs[0] as string])
    running.push(b)
    await waitFor(() => events().some(e => e.event === 'peer-joined' && e.peer === b.peerId), { what: 'a line saying b joined' })
    // b logs pretty lines, one readable line per event
    await waitFor(() => new RegExp(`INFO.*peer joined: ${a.peerId}`).test(b.output()), { what: 'b\'s pretty line saying a joined' })
    // one line each: the structured fields stay in the JSON format
    expect(b.output()).not.toMatch(/^\s+("|\])/m)
    b.proc.kill('SIGKILL')
    await waitFor(() => events().some(e => e.event === 'peer-left' && e.peer === b.peerId), { what: 'a line saying b left' })
  })

  it('a node restarted with a stale bootstrap address rejoins through the peers it met before, and warns of nothing while it reaches them', async () => {
    const dir = await tmp()
    const a = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0'])
    running.push(a)
    const peersOf = async (d: DaemonProcess): Promise<string[]> => ((await (await fetch(`${d.api}/v1/peers`)).json()) as { peers: Array<{ peerId: string }> }).peers.map(p => p.peerId)
    const b = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0', '--bootstrap', a.addrs[0] as string])
    running.push(b)
    // a's presence on b comes over gossip, after identify told b a's listen addresses (what it remembers)
    await waitFor(async () => ((await (await fetch(`${b.api}/v1/capabilities`)).json()) as { capabilities: Array<{ peers: Array<{ peerId: string }> }> }).capabilities.some(c => c.peers.some(p => p.peerId === a.peerId)), { what: 'b to meet a' })
    b.proc.kill('SIGTERM')
    expect(await b.exited).toBe(0)
    // its bootstrap peer has moved (a restart on tcp/0 takes another port): nothing answers there
    const stale = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'
    const again = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0', '--bootstrap', stale, '--log-format', 'json'])
    running.push(again)
    await waitFor(async () => (await peersOf(again)).includes(a.peerId), { what: 'b, restarted, to reach a again' })
    expect(again.output()).not.toMatch(/bootstrap-unreachable/)
  })

  it('submit --wait names the task it submitted when its node goes during the wait', async () => {
    const d = await startDaemonProcess(['--data', await tmp(), '--api', '127.0.0.1:0'])
    running.push(d)
    const cli = runCli(['submit', '--api', d.api, '--capability', 'sleep', '--input', '{"ms":60000}', '--wait'])
    const running1 = async (): Promise<boolean> => ((await (await fetch(`${d.api}/v1/tasks?state=running`)).json()) as { tasks: unknown[] }).tasks.length === 1
    await waitFor(running1, { what: 'the task to run' })
    d.proc.kill('SIGKILL')
    const r = await cli
    // the task was stored and runs on elsewhere in a mesh: its id is how the user finds it
    expectOneLineError(r, /^agentmesh: task [0-9a-f]{64} was submitted, and the wait for it failed: no node answers at .*; it runs on in the mesh: ask another node with agentmesh task [0-9a-f]{64}$/m)
  })

  it('refuses a second daemon on a data dir in use, and the first carries on', async () => {
    const dir = await tmp()
    const first = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0'])
    running.push(first)
    const second = await runCli(['node', '--data', join(dir, 'a'), '--api', '127.0.0.1:0'])
    expectOneLineError(second, new RegExp(`in use by another agentmesh node \\(pid ${first.proc.pid}\\)`))
    // the same command again, the first's port too (as a second `agentmesh node` on the defaults does): the node is named, not the port
    const again = await runCli(['node', '--data', join(dir, 'a'), '--api', new URL(first.api).host])
    expectOneLineError(again, new RegExp(`in use by another agentmesh node \\(pid ${first.proc.pid}\\)`))
    expect((await (await fetch(`${first.api}/v1/health`)).json()).ok).toBe(true)
    const status = await runCli(['status', '--data', join(dir, 'a')])
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(first.peerId)
  })

  it('names an API port in use, and a libp2p port in use', async () => {
    const dir = await tmp()
    const port = await occupiedPort()
    expectOneLineError(await runCli(['node', '--data', join(dir, 'a'), '--api', `127.0.0.1:${port}`]), /API address .* in use/)
    // refused before anything is made: no store, no node key in the data dir
    expect(existsSync(join(dir, 'a', 'store'))).toBe(false)
    expectOneLineError(await runCli(['node', '--data', join(dir, 'b'), '--api', '127.0.0.1:0', '--listen', `/ip4/127.0.0.1/tcp/${port}`]), /cannot listen on \/ip4\/127\.0\.0\.1\/tcp/)
  })

  it('takes options from a config file and the environment, flags winning', async () => {
    const dir = await tmp()
    const file = join(dir, 'config.json')
    await writeFile(file, JSON.stringify({ data: join(dir, 'a'), mesh: 'file-mesh', api: '127.0.0.1:0' }))
    const d = await startDaemonProcess(['--config', file, '--mesh', 'flag-mesh'], { env: { AGENTMESH_MESH: 'env-mesh' } })
    running.push(d)
    expect(d.output()).toMatch(/^mesh: flag-mesh$/m)
    const node = await (await fetch(`${d.api}/v1/node`)).json()
    expect(node.mesh).toBe('flag-mesh')
    const e = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0'], { env: { AGENTMESH_MESH: 'env-mesh' } })
    running.push(e)
    expect(e.output()).toMatch(/^mesh: env-mesh$/m)
  })

  it('keygen writes a key once and refuses to overwrite it', async () => {
    const dir = await tmp()
    const first = await runCli(['keygen', '--swarm-key', join(dir, 'swarm.key')])
    expect(first.code).toBe(0)
    expectOneLineError(await runCli(['keygen', '--swarm-key', join(dir, 'swarm.key')]), /exists/)
    const d = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--swarm-key', join(dir, 'swarm.key')])
    running.push(d)
    expect(d.peerId).toMatch(/^12D3KooW/)
  })

  it('serves the control API: health, peers, node, and JSON errors for bad routes', async () => {
    const dir = await tmp()
    const d = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0'])
    running.push(d)
    const health = await (await fetch(`${d.api}/v1/health`)).json()
    expect(health).toMatchObject({ ok: true, peerId: d.peerId, version: expect.any(String) })
    expect(health.uptimeMs).toBeGreaterThanOrEqual(0)
    const node = await (await fetch(`${d.api}/v1/node`)).json()
    expect(node).toMatchObject({ peerId: d.peerId, mesh: 'default', addrs: d.addrs, store: { tasks: 0 } })
    expect(await (await fetch(`${d.api}/v1/peers`)).json()).toEqual({ peers: [] })
    const missing = await fetch(`${d.api}/v1/nothing-here`)
    expect(missing.status).toBe(404)
    expect((await missing.json()).error.name).toBe('NOT_FOUND')
    const wrongMethod = await fetch(`${d.api}/v1/health`, { method: 'DELETE' })
    expect(wrongMethod.status).toBe(405)
    // RFC 9110: a 405 says which methods the path takes
    expect(wrongMethod.headers.get('allow')?.split(', ')).toContain('GET')
    expect((await wrongMethod.json()).error.message).toMatch(/DELETE is not allowed on \/v1\/health \(it takes GET/)
    const peers = await runCli(['peers', '--api', d.api, '--json'])
    expect(JSON.parse(peers.stdout)).toEqual({ peers: [] })
  })
})
