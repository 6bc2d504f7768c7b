import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../../sim/wait.js'
import { getJson, startDaemonProcess } from '../../sim/daemon-process.js'
import { useDaemons } from '../helpers/daemons.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'

const peersOf = async (d: DaemonProcess): Promise<string[]> =>
  (await getJson<{ peers: Array<{ peerId: string }> }>(`${d.api}/v1/peers`)).peers.map(p => p.peerId)

describe('daemons as child processes', () => {
  const tmp = useTmpDirs()
  const start = useDaemons()
  // daemons started with arguments of their own
  const running: DaemonProcess[] = []
  afterEach(() => { for (const d of running.splice(0)) d.proc.kill('SIGKILL') })

  it('chains three daemons by bootstrap, survives kill -9 of the middle one, and takes it back', async () => {
    const dir = await tmp()
    const a = await start(dir, 'a')
    const b = await start(dir, 'b', a)
    const c = await start(dir, 'c', b)
    expect(a.addrs[0]).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${a.peerId}$`))

    for (const [self, others] of [[a, [b, c]], [b, [a, c]], [c, [a, b]]] as const) {
      await waitFor(async () => {
        const peers = await peersOf(self)
        return others.every(o => peers.includes(o.peerId))
      }, { what: `${self.peerId} to list both others`, timeoutMs: 20_000 })
    }

    b.proc.kill('SIGKILL')
    await b.exited
    await waitFor(async () => !(await peersOf(a)).includes(b.peerId), { what: 'a to drop b' })
    expect(await peersOf(a)).toContain(c.peerId)
    expect(await peersOf(c)).toContain(a.peerId)
    expect((await getJson(`${a.api}/v1/health`)).ok).toBe(true)
    expect((await getJson(`${c.api}/v1/health`)).ok).toBe(true)

    // kill -9 leaves a stale node.json and LevelDB's LOCK file; neither stops a restart
    const b2 = await start(dir, 'b', a)
    expect(b2.peerId).toBe(b.peerId)
    await waitFor(async () => (await peersOf(b2)).includes(a.peerId) && (await peersOf(b2)).includes(c.peerId), { what: 'b to rejoin', timeoutMs: 20_000 })
  })

  it('keeps retrying its bootstrap peer until that peer starts', async () => {
    const dir = await tmp()
    const a = await start(dir, 'a')
    const addr = a.addrs[0] as string
    const port = addr.split('/')[4] as string
    a.proc.kill('SIGKILL')
    await a.exited
    const b = await startDaemonProcess(['--data', join(dir, 'b'), '--api', '127.0.0.1:0', '--bootstrap', addr])
    running.push(b)
    expect(await peersOf(b)).toHaveLength(0)
    // a restarted on its old data dir and port is the same peer at the same address
    const again = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--listen', `/ip4/127.0.0.1/tcp/${port}`])
    running.push(again)
    await waitFor(async () => (await peersOf(b)).includes(a.peerId), { what: 'b to reach a once it is back', timeoutMs: 30_000 })
  })

  it('stops cleanly on SIGTERM: node.json removed, exit 0', async () => {
    const dir = await tmp()
    const a = await start(dir, 'a')
    expect(existsSync(join(dir, 'a', 'node.json'))).toBe(true)
    a.proc.kill('SIGTERM')
    const code = await a.exited
    expect(code, a.output()).toBe(0)
    expect(existsSync(join(dir, 'a', 'node.json'))).toBe(false)
    expect(a.output()).toMatch(/stopped/)
  })
})
