import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startDaemonProcess } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { useDaemons } from '../helpers/daemons.js'
import { CAN_MOUNT, fillDisk, mountSmallDisk } from '../helpers/small-disk.js'
import { useTmpDirs } from '../helpers/tmp.js'

describe.skipIf(!CAN_MOUNT)('a daemon whose disk fills (a tmpfs: root only)', () => {
  const tmp = useTmpDirs()
  const daemon = useDaemons()

  it('stops writing at its first failed write, never answers 500, says it is unhealthy and full, and starts whole once there is room', async () => {
    const dir = await tmp()
    const disk = join(dir, 'disk')
    await mkdir(disk)
    const unmount = mountSmallDisk(disk, 48 * 1024 * 1024)
    try {
      const a = await daemon(dir, 'a')
      const b = await daemon(dir, 'b', a)
      // four: placements of three leave it out of some tasks, whose submitter then only caches a copy
      await daemon(dir, 'd', a)
      const full = await daemon(disk, 'c', a)
      const submit = async (i: number): Promise<Response> => fetch(`${full.api}/v1/tasks?wait=10000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'echo', input: { i, pad: 'x'.repeat(4_000) } }) })
      await waitFor(async () => (await (await fetch(`${full.api}/v1/mesh`)).json()).peers.length === 4, { what: 'the daemon on the small disk to see the mesh', timeoutMs: 30_000 })
      await waitFor(async () => (await submit(-1)).status === 200, { what: 'the mesh to run a task submitted to the daemon on the small disk', timeoutMs: 30_000 })
      await fillDisk(join(disk, 'filler'))

      // submits go on: a majority of each placement elsewhere takes them. None is a 500, where the
      // full store's failed writes were answered 500 "a bug: please report it"
      const acknowledged: string[] = []
      let refused = 0
      for (let i = 0; i < 300; i++) {
        const res = await submit(i)
        const text = await res.text()
        if (res.status === 200 || res.status === 202) acknowledged.push(JSON.parse(text).id)
        // this node's own copy failing may leave a placement short (QUORUM_UNAVAILABLE)
        else if (res.status === 503 && res.headers.get('retry-after') !== null && ['STORE_FAILED', 'QUORUM_UNAVAILABLE'].includes(JSON.parse(text).error?.name)) refused++
        else expect.fail(`answered ${res.status}: ${text}`)
      }
      expect(acknowledged.length + refused).toBe(300)
      const health = await (await fetch(`${full.api}/v1/health`)).json()
      expect(health).toMatchObject({ ok: false, problem: expect.stringMatching(/No space left on device.*free disk space, then restart the node/) })
      const metrics = await (await fetch(`${full.api}/v1/metrics`)).json()
      expect(metrics.api.internalErrors).toBe(0)
      // peers hand it nothing: it says it has no free slot
      await waitFor(async () => {
        const mesh = await (await fetch(`${a.api}/v1/mesh`)).json()
        return mesh.peers.find((p: { peerId: string }) => p.peerId === health.peerId)?.freeSlots.echo === 0
      }, { what: 'the peers to see the failed daemon with no free slot', timeoutMs: 30_000 })

      // an array submit is not refused whole for the copies it could not cache: each task has its answer
      const bulk = await fetch(`${full.api}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ capability: 'echo', input: { bulk: i } }))) })
      expect(bulk.status, await bulk.clone().text()).toBe(202)
      const entries = (await bulk.json()).tasks as Array<{ id?: string, error?: { name: string } }>
      expect(entries.filter(e => e.id !== undefined).length).toBeGreaterThan(0)
      for (const e of entries) if (e.id === undefined) expect(['STORE_FAILED', 'QUORUM_UNAVAILABLE']).toContain(e.error?.name)
      acknowledged.push(...entries.flatMap(e => e.id === undefined ? [] : [e.id]))

      // room again: still unhealthy until a restart, and every task it acknowledged is done elsewhere
      await rm(join(disk, 'filler'))
      expect((await (await fetch(`${full.api}/v1/health`)).json()).ok).toBe(false)
      // it still serves reads, of tasks it holds no copy of too (it could not keep one), and lists
      const last = acknowledged.at(-1) as string
      await waitFor(async () => (await (await fetch(`${full.api}/v1/tasks/${last}`)).json()).state === 'completed', { what: 'the failed daemon to read a task it acknowledged', timeoutMs: 30_000 })
      expect((await fetch(`${full.api}/v1/tasks?limit=5`)).status).toBe(200)
      // and its sweeps, which would fail on their first write, wait for the restart
      expect((await (await fetch(`${full.api}/v1/metrics`)).json()).sweeper.skippedStoreFailed).toBeGreaterThan(0)
      for (const id of acknowledged) {
        await waitFor(async () => (await (await fetch(`${a.api}/v1/tasks/${id}`)).json()).state === 'completed', { what: `acknowledged task ${id} to complete`, timeoutMs: 30_000 })
      }
      full.proc.kill('SIGTERM')
      expect(await full.exited).toBe(0)
      // the store stopped at its first failed write, so its log is whole but for a torn tail: it starts
      const again = await startDaemonProcess(['--data', join(disk, 'c'), '--api', '127.0.0.1:0', '--bootstrap', a.addrs[0] as string])
      try {
        expect((await (await fetch(`${again.api}/v1/health`)).json()).ok).toBe(true)
        await waitFor(async () => (await fetch(`${again.api}/v1/tasks?wait=10000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'echo', input: 'after' }) })).status === 200, { what: 'the restarted daemon to run a task', timeoutMs: 30_000 })
      } finally {
        again.proc.kill('SIGTERM')
        await again.exited
      }
      b.proc.kill('SIGTERM')
      await b.exited
    } finally {
      unmount()
    }
  }, 180_000)
})
