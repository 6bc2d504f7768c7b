import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import { runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'

/** Exit 1 with one line naming the problem: no hang, no stack trace, no "unexpected error". */
function expectRefused (r: { code: number | null, stderr: string }, pattern: RegExp): void {
  expect(r.stderr).toMatch(pattern)
  expect(r.code, r.stderr).toBe(1)
  expect(r.stderr).not.toMatch(/\n\s+at |unexpected error/)
  expect(r.stderr.trim().split('\n')).toHaveLength(1)
}

describe('a data dir the daemon cannot use', () => {
  const tmp = useTmpDirs()

  /** A data dir a daemon ran on and left cleanly: its store holds a node key. */
  async function used (): Promise<string> {
    const dir = join(await tmp(), 'n')
    const d = await startDaemonProcess(['--data', dir, '--api', '127.0.0.1:0'])
    d.proc.kill('SIGTERM')
    expect(await d.exited).toBe(0)
    return dir
  }
  const start = async (dir: string): Promise<{ code: number | null, stderr: string }> => runCli(['node', '--data', dir, '--api', '127.0.0.1:0'], { timeoutMs: 20_000 })

  it('refuses an unreadable node key instead of starting as a new peer', async () => {
    const dir = await used()
    const db = new Level<string, string>(join(dir, 'store'), { valueEncoding: 'utf8' })
    await db.sublevel<string, string>('meta', { valueEncoding: 'utf8' }).put('identity', 'garbage{')
    await db.close()
    expectRefused(await start(dir), /node key in .* is unreadable/)
  })

  it('refuses a data dir made for another mesh, and starts it again with its own', async () => {
    const dir = await used()
    // its tasks and placements are mesh default's: started as another mesh's peer it served and ran both
    expectRefused(await runCli(['node', '--data', dir, '--api', '127.0.0.1:0', '--mesh', 'other'], { timeoutMs: 20_000 }), /data dir .* is a peer of mesh "default", not "other": .*--mesh default/)
    const again = await startDaemonProcess(['--data', dir, '--api', '127.0.0.1:0'])
    again.proc.kill('SIGTERM')
    expect(await again.exited).toBe(0)
  })

  it('refuses a store that holds tasks but lost its node key, instead of starting as a new peer holding them', async () => {
    const dir = await used()
    const db = new Level<string, string>(join(dir, 'store'), { valueEncoding: 'utf8' })
    await db.sublevel<string, string>('tasks', { valueEncoding: 'utf8' }).put('f'.repeat(64), '{}')
    await db.sublevel<string, string>('meta', { valueEncoding: 'utf8' }).del('identity')
    await db.close()
    expectRefused(await start(dir), /node key is missing from .*, which holds tasks/)
  })

  it('refuses a store that lost its log, or everything it held, instead of starting without it or empty as a new peer', async () => {
    const dir = await used()
    const store = join(dir, 'store')
    const peer = (await readFile(join(store, 'PEER'), 'utf8')).trim()
    expect(peer).toMatch(/^12D3KooW/)
    // a PEER mark with more than an id in it: refused in one line, the mark quoted as it is
    await writeFile(join(store, 'PEER'), `${peer}\njunk\n`)
    expectRefused(await start(dir), new RegExp(`is peer ${peer}, but .*PEER says this store is peer "${peer}\\\\njunk`))
    await writeFile(join(store, 'PEER'), peer)
    // one start and a clean stop: everything is in LevelDB's log, and CURRENT and MANIFEST remain
    const logs = (await readdir(store)).filter(n => /^\d+\.log$/.test(n))
    expect(logs).toHaveLength(1)
    await rm(join(store, logs[0] as string))
    expectRefused(await start(dir), new RegExp(`store at .* lost its write-ahead log ${logs[0] as string}, which its MANIFEST names`))
    // every file of LevelDB's gone as well: it would open empty, and PEER still names the peer it was
    for (const name of await readdir(store)) if (name !== 'PEER') await rm(join(store, name), { recursive: true })
    expectRefused(await start(dir), new RegExp(`node key is missing from .*, which was peer ${peer}`))
  })

  /** A data dir whose daemon ran one echo task of `input` to completion and stopped cleanly, with the task's id. */
  async function finishedTask (input: unknown): Promise<{ dir: string, id: string }> {
    const dir = join(await tmp(), 'n')
    const d = await startDaemonProcess(['--data', dir, '--api', '127.0.0.1:0'])
    const submit = await fetch(`${d.api}/v1/tasks?wait=10000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'echo', input }) })
    const { id, state } = await submit.json() as { id: string, state: string }
    expect(state).toBe('completed')
    d.proc.kill('SIGTERM')
    expect(await d.exited).toBe(0)
    return { dir, id }
  }

  /** Changes the stopped store's results with `edit`, then runs `check` on a daemon restarted on it. */
  async function restartedAfter (dir: string, edit: (results: { get: (key: string) => Promise<string | undefined>, put: (key: string, value: string) => Promise<void> }) => Promise<void>, check: (d: DaemonProcess) => Promise<void>): Promise<void> {
    const db = new Level<string, string>(join(dir, 'store'), { valueEncoding: 'utf8' })
    await edit(db.sublevel<string, string>('results', { valueEncoding: 'utf8' }))
    await db.close()
    const d = await startDaemonProcess(['--data', dir, '--api', '127.0.0.1:0'])
    try {
      await check(d)
    } finally {
      d.proc.kill('SIGTERM')
      await d.exited
    }
  }

  it('answers a finished task whose result is unreadable on disk as completed, on every read, not as unknown', async () => {
    const { dir, id } = await finishedTask({ n: 1 })
    await restartedAfter(dir, async results => { await results.put(id, '{garbage') }, async d => {
      for (let read = 0; read < 3; read++) {
        const res = await fetch(`${d.api}/v1/tasks/${id}`)
        expect({ read, status: res.status, state: ((await res.json()) as any).state }).toEqual({ read, status: 200, state: 'completed' })
      }
      expect(((await (await fetch(`${d.api}/v1/node`)).json()) as any).store.corruptRecords).toBe(1)
    })
  })

  it('counts and tells a result altered on disk (its value no longer hashes to the certificate), and does not serve it', async () => {
    const { dir, id } = await finishedTask({ n: 1000 })
    await restartedAfter(dir, async results => { await results.put(id, (await results.get(id) as string).replace('"n":1000', '"n":7000')) }, async d => {
      const read = await fetch(`${d.api}/v1/tasks/${id}/result?wait=500`)
      expect({ status: read.status, body: await read.json() }).toEqual({ status: 202, body: { id, state: 'completed' } })
      expect(((await (await fetch(`${d.api}/v1/node`)).json()) as any).store.corruptRecords).toBe(1)
      await waitFor(() => d.output().includes(`skipped a corrupt record in the store: results/${id}: its value does not hash`), { what: 'the operator log to tell the altered result', timeoutMs: 5_000 })
    })
  })

  it('starts past a corrupt task record: counted, skipped, and told once to the operator log', async () => {
    const dir = await used()
    const db = new Level<string, string>(join(dir, 'store'), { valueEncoding: 'utf8' })
    await db.sublevel<string, string>('tasks', { valueEncoding: 'utf8' }).put('f'.repeat(64), 'garbage{')
    await db.close()
    const d = await startDaemonProcess(['--data', dir, '--api', '127.0.0.1:0'])
    try {
      const node = await (await fetch(`${d.api}/v1/node`)).json()
      expect(node.store.corruptRecords).toBeGreaterThanOrEqual(1)
      const told = d.output().split('\n').filter(l => l.includes('skipped a corrupt record'))
      expect(told).toHaveLength(1)
      expect(told[0]).toMatch(/tasks\/f{64}: not JSON/)
    } finally {
      d.proc.kill('SIGTERM')
      await d.exited
    }
  })

  it('refuses a store whose CURRENT file is gone, or garbled, instead of opening an empty one beside it', async () => {
    const dir = await used()
    await rm(join(dir, 'store', 'CURRENT'))
    expectRefused(await start(dir), /has LevelDB files but no CURRENT file/)
    await writeFile(join(dir, 'store', 'CURRENT'), 'garbage\n')
    expectRefused(await start(dir), /the store at .* cannot be opened/)
  })

  it('refuses a data dir that is a file, and exits when it cannot write node.json once up', async () => {
    const root = await tmp()
    await writeFile(join(root, 'file'), 'x')
    expectRefused(await start(join(root, 'file')), /cannot use data dir .*\(a file is in the way\)/)
    expectRefused(await start(join(root, 'file', 'sub')), /cannot use data dir .*ENOTDIR \(a file is in the way\)/)
    // a directory /proc does not let anyone make: Node's recursive mkdir looped there for ever, at a full core
    expectRefused(await start('/proc/1/agentmesh-data'), /cannot use data dir \/proc\/1\/agentmesh-data: ENOENT/)
    // a link to nowhere: refused as missing, not as a file in the way
    await symlink(join(root, 'nowhere'), join(root, 'dangling'))
    expectRefused(await start(join(root, 'dangling', 'sub')), /cannot use data dir .*dangling\/sub: ENOENT$/m)
    // node.json's temporary name taken by a directory: the node was up, and must not stay up
    const dir = await used()
    await mkdir(join(dir, 'node.json.tmp'))
    expectRefused(await start(dir), /cannot write .*node\.json/)
    // nothing was left holding the store: it starts once the way is clear
    await rm(join(dir, 'node.json.tmp'), { recursive: true })
    const again = await startDaemonProcess(['--data', dir, '--api', '127.0.0.1:0'])
    again.proc.kill('SIGTERM')
    expect(await again.exited).toBe(0)
  })
})

describe('an agents module the daemon cannot load', () => {
  const tmp = useTmpDirs()

  it('refuses an agents module whose top-level await never settles, in one line, not with Node\'s exit 13', async () => {
    const root = await tmp()
    await writeFile(join(root, 'stuck.mjs'), 'await new Promise(() => {})\n')
    const r = await runCli(['node', '--data', join(root, 'n'), '--api', '127.0.0.1:0', '--agents-module', join(root, 'stuck.mjs')], { timeoutMs: 20_000 })
    expectRefused(r, /cannot load agents module .*stuck\.mjs: its top-level await never settles/)
  })
})
