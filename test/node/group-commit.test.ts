import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'

const WRITER = join(import.meta.dirname, '..', 'fixtures', 'group-commit-writer.mjs')

describe('group commit', () => {
  const tmp = useTmpDirs()

  it('loses no acknowledged write and splits no operation when the process is killed mid-batch', async () => {
    const path = join(await tmp(), 'store')
    const child = spawn(process.execPath, [WRITER, path], { stdio: ['ignore', 'pipe', 'inherit'] })
    const acked: number[] = []
    let out = ''
    child.stdout.on('data', d => {
      out += String(d)
      const lines = out.split('\n')
      out = lines.pop() ?? ''
      for (const l of lines) if (l.startsWith('ack ')) acked.push(Number(l.slice(4)))
    })
    const exited = new Promise(resolve => child.once('exit', resolve))
    await waitFor(() => acked.length >= 2_000, { what: 'two thousand acknowledged writes', timeoutMs: 60_000 })
    // killed while batches are in flight: some written and not yet acknowledged, some not written
    child.kill('SIGKILL')
    await exited
    const store = await Store.open({ path })
    try {
      const a = new Set<number>()
      const b = new Set<number>()
      for await (const [key] of store.meta.entries()) {
        // the writer's pairs, not the store's own marks
        if (!/^[ab]:\d+$/.test(key)) continue
        const [side, n] = key.split(':')
        ;(side === 'a' ? a : b).add(Number(n))
      }
      // every acknowledged operation is there
      expect(acked.filter(n => !a.has(n) || !b.has(n))).toEqual([])
      // and every operation is whole: both of its keys or neither
      expect([...a].filter(n => !b.has(n))).toEqual([])
      expect([...b].filter(n => !a.has(n))).toEqual([])
      expect(a.size).toBeGreaterThanOrEqual(acked.length)
    } finally {
      await store.close()
    }
  })
})
