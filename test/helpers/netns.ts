import { execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess, SpawnOptions } from 'node:child_process'

/**
 * Linux network namespaces for real network partitions between real daemons.
 *
 * Layout: one namespace per node (`am-<rand>-<i>`) and one "switch" namespace (`am-<rand>-sw`).
 * Each node has `eth0` with `10.213.1.<i+1>/24`, a veth whose other end (`n<i>`) sits in the
 * switch namespace as a port of a Linux bridge. These addresses exist only inside the test's own
 * namespaces: there is no default route, no route to the host and no link to the root namespace.
 *
 * A partition moves bridge ports: the switch namespace holds one bridge per group (`g0`, `g1`,
 * ...), and a node's port is enslaved to its group's bridge, so frames between groups have no
 * path at all (a cable cut: silent loss, TCP only learns of it by timeouts). Healing puts every
 * port back on `g0`. This needs only `ip` (iproute2) and a kernel with bridge and veth: no
 * nftables, iptables or tc classifiers (the CI kernel has none of the latter loaded).
 *
 * The test process stays in the root namespace; it reaches a daemon's API on the loopback of that
 * daemon's namespace through `unixProxy`: a small forwarder started inside the namespace that
 * listens on a Unix socket (a file, which namespaces do not separate) and connects to 127.0.0.1.
 */

const IP = 'ip'
const SUBNET = '10.213.1'

export type Availability = { ok: true } | { ok: false, reason: string }

export interface ExecResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface HttpAnswer {
  status: number
  body: any
  headers?: Record<string, string | string[] | undefined>
}

export interface Netns {
  /** the random part of every name, for messages */
  readonly id: string
  /** node namespaces, index i is node i */
  readonly names: string[]
  /** the namespace holding the bridges */
  readonly switchNs: string
  /** node i's address, e.g. 10.213.1.1 for node 0 */
  addr: (i: number) => string
  /** runs a command inside node i's namespace to completion */
  exec: (i: number, cmd: string, args: string[], options?: { timeoutMs?: number }) => Promise<ExecResult>
  /** spawns a long-running command inside node i's namespace; killed (SIGKILL) by cleanup */
  spawn: (i: number, cmd: string, args: string[], options?: SpawnOptions) => ChildProcess
  /**
   * Splits the nodes: each group gets a bridge of its own, and frames cross no group boundary.
   * Nodes named in no group are alone.
   */
  partition: (groups: number[][]) => Promise<void>
  /** every node on one bridge again */
  heal: () => Promise<void>
  /** whether node `from` can open a TCP connection to node `to` on `port` (within timeoutMs) */
  reachable: (from: number, to: number, port: number, timeoutMs?: number) => Promise<boolean>
  /**
   * Starts a forwarder in node i's namespace from a Unix socket to 127.0.0.1:port there, and
   * resolves with the socket's path once it listens. Use with `httpJson`.
   */
  unixProxy: (i: number, port: number) => Promise<string>
  /** kills every process this helper spawned and deletes the namespaces; safe to call twice */
  cleanup: () => Promise<void>
}

function run (cmd: string, args: string[], timeoutMs = 10_000): Promise<ExecResult> {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err: any, stdout, stderr) => {
      // a missing command is err.code 'ENOENT' with no output: say so in stderr
      const spawnError = typeof err?.code === 'string' ? `${cmd}: ${String(err.code)}` : ''
      resolve({ code: err == null ? 0 : (typeof err.code === 'number' ? err.code : null), stdout: String(stdout), stderr: String(stderr) || spawnError })
    })
  })
}

async function ip (...args: string[]): Promise<void> {
  const r = await run(IP, args)
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
}

/**
 * Whether this machine can run namespace tests: root, `ip` present, and a namespace with a
 * bridge and a veth pair can be made (a container without CAP_SYS_ADMIN fails here).
 */
export async function netnsAvailable (): Promise<Availability> {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'network namespaces need root (ip netns add); run as root' }
  const probe = `am-probe-${randomBytes(3).toString('hex')}`
  const add = await run(IP, ['netns', 'add', probe])
  if (add.code !== 0) {
    const missing = add.stderr.endsWith('ENOENT') ? ' (`ip` not found: apt-get install iproute2)' : ''
    return { ok: false, reason: `ip netns add failed${missing}: ${add.stderr.trim() || `exit ${String(add.code)}`}` }
  }
  try {
    for (const args of [['link', 'add', 'b0', 'type', 'bridge'], ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']]) {
      const r = await run(IP, ['-n', probe, ...args])
      if (r.code !== 0) return { ok: false, reason: `ip ${args.join(' ')} failed in a namespace (kernel without bridge or veth?): ${r.stderr.trim()}` }
    }
    return { ok: true }
  } finally {
    await run(IP, ['netns', 'del', probe])
  }
}

// namespaces of every Netns not yet cleaned up: deleted on exit even if afterAll never ran
const live = new Set<Netns>()
const liveNames = new Set<string>()
const liveProcs = new Set<ChildProcess>()
let exitHook = false
function installExitHook (): void {
  if (exitHook) return
  exitHook = true
  process.once('exit', () => {
    for (const p of liveProcs) { try { p.kill('SIGKILL') } catch {} }
    for (const name of liveNames) { try { execFileSync(IP, ['netns', 'del', name], { stdio: 'ignore', timeout: 5_000 }) } catch {} }
  })
}

/** Makes `nodes` namespaces on one bridge, each with loopback and its 10.213.1.x address up. */
export async function createNetns (nodes: number): Promise<Netns> {
  if (nodes < 1 || nodes > 200) throw new RangeError('between 1 and 200 nodes')
  installExitHook()
  const id = randomBytes(3).toString('hex')
  const names = Array.from({ length: nodes }, (_, i) => `am-${id}-${i}`)
  const switchNs = `am-${id}-sw`
  const procs = new Set<ChildProcess>()
  const sockDir = mkdtempSync(join(tmpdir(), `am-${id}-`))
  let cleaned = false

  const netns: Netns = {
    id,
    names,
    switchNs,
    addr: i => `${SUBNET}.${i + 1}`,
    exec: async (i, cmd, args, options = {}) => run(IP, ['netns', 'exec', nameOf(i), cmd, ...args], options.timeoutMs),
    spawn: (i, cmd, args, options = {}) => {
      // `ip netns exec` execs the command in place, so the child's pid is the command's own
      const child = spawn(IP, ['netns', 'exec', nameOf(i), cmd, ...args], options)
      procs.add(child)
      liveProcs.add(child)
      child.once('exit', () => { procs.delete(child); liveProcs.delete(child) })
      return child
    },
    partition: async groups => {
      const groupOf = new Map<number, number>()
      groups.forEach((g, k) => g.forEach(i => {
        if (i < 0 || i >= nodes) throw new RangeError(`no node ${i}`)
        if (groupOf.has(i)) throw new Error(`node ${i} is in two groups`)
        groupOf.set(i, k)
      }))
      let next = groups.length
      for (let i = 0; i < nodes; i++) if (!groupOf.has(i)) groupOf.set(i, next++)
      for (let i = 0; i < nodes; i++) await ip('-n', switchNs, 'link', 'set', 'dev', `n${i}`, 'master', `g${groupOf.get(i) as number}`)
    },
    heal: async () => {
      for (let i = 0; i < nodes; i++) await ip('-n', switchNs, 'link', 'set', 'dev', `n${i}`, 'master', 'g0')
    },
    reachable: async (from, to, port, timeoutMs = 1_500) => {
      // bash's /dev/tcp: no extra tool; a connect across a partition hangs until `timeout` ends it
      const secs = (timeoutMs / 1000).toFixed(1)
      const r = await netns.exec(from, 'timeout', [secs, 'bash', '-c', `exec 3<>/dev/tcp/${netns.addr(to)}/${port}`], { timeoutMs: timeoutMs + 2_000 })
      return r.code === 0
    },
    unixProxy: async (i, port) => {
      const path = join(sockDir, `api-${i}.sock`)
      rmSync(path, { force: true })
      const child = netns.spawn(i, process.execPath, ['-e', FORWARDER, path, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout?.on('data', d => { out += String(d) })
      child.stderr?.on('data', d => { out += String(d) })
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`forwarder in ${nameOf(i)} not listening in time: ${out}`)), 10_000)
        child.stdout?.on('data', () => { if (out.includes('listening')) { clearTimeout(timer); resolve() } })
        child.once('exit', code => { clearTimeout(timer); reject(new Error(`forwarder in ${nameOf(i)} exited (${String(code)}): ${out}`)) })
      })
      return path
    },
    cleanup: async () => {
      if (cleaned) return
      cleaned = true
      await Promise.all([...procs].map(async p => {
        if (p.exitCode === null && p.signalCode === null) {
          const gone = once(p, 'exit')
          p.kill('SIGKILL')
          await Promise.race([gone, new Promise(resolve => setTimeout(resolve, 5_000))])
        }
      }))
      // deleting a namespace also destroys the veths and bridges inside it
      for (const name of [...names, switchNs]) {
        await run(IP, ['netns', 'del', name])
        liveNames.delete(name)
      }
      rmSync(sockDir, { recursive: true, force: true })
      live.delete(netns)
    }
  }

  function nameOf (i: number): string {
    const name = names[i]
    if (name === undefined) throw new RangeError(`no node ${i}`)
    return name
  }

  live.add(netns)
  try {
    for (const name of [switchNs, ...names]) {
      await ip('netns', 'add', name)
      liveNames.add(name)
    }
    await ip('-n', switchNs, 'link', 'set', 'lo', 'up')
    // one bridge per possible group; STP off and no forward delay, so a moved port forwards at once
    for (let k = 0; k < nodes; k++) {
      await ip('-n', switchNs, 'link', 'add', 'name', `g${k}`, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0')
      await ip('-n', switchNs, 'link', 'set', `g${k}`, 'up')
    }
    for (let i = 0; i < nodes; i++) {
      const ns = names[i] as string
      await ip('-n', switchNs, 'link', 'add', `n${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      await ip('-n', switchNs, 'link', 'set', `n${i}`, 'master', 'g0')
      await ip('-n', switchNs, 'link', 'set', `n${i}`, 'up')
      await ip('-n', ns, 'link', 'set', 'lo', 'up')
      // the connected /24 is the only route there is: no default route, nothing leaves
      await ip('-n', ns, 'addr', 'add', `${netns.addr(i)}/24`, 'dev', 'eth0')
      await ip('-n', ns, 'link', 'set', 'eth0', 'up')
    }
  } catch (err) {
    await netns.cleanup()
    throw err
  }
  return netns
}

/** Deletes whatever namespaces are still up (for an afterAll that must not depend on a variable). */
export async function cleanupAllNetns (): Promise<void> {
  await Promise.all([...live].map(async n => n.cleanup()))
}

// Runs inside a namespace: Unix socket (reachable from the root namespace) -> 127.0.0.1:PORT there.
const FORWARDER = `
const net = require('node:net')
const [path, port] = process.argv.slice(1)
const server = net.createServer(client => {
  const upstream = net.connect(Number(port), '127.0.0.1')
  const close = () => { client.destroy(); upstream.destroy() }
  client.on('error', close); upstream.on('error', close)
  client.pipe(upstream).pipe(client)
})
server.listen(path, () => process.stdout.write('listening\\n'))
`

/**
 * One HTTP request over a Unix socket (a `unixProxy`), JSON in and out. Rejects on a network
 * error or after timeoutMs; any HTTP status resolves.
 */
export async function httpJson (socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 5_000): Promise<HttpAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return await new Promise<HttpAnswer>((resolve, reject) => {
    const req = request({
      socketPath,
      method,
      path,
      agent: false,
      headers: { host: '127.0.0.1', ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }) }
    }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', d => { text += d })
      res.on('end', () => {
        let json: unknown
        try { json = text === '' ? undefined : JSON.parse(text) } catch { json = text }
        resolve({ status: res.statusCode ?? 0, body: json, headers: res.headers })
      })
      res.on('error', reject)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(payload)
  })
}
