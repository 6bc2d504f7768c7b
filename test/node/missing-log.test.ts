import { readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import { refuseMissingLog } from '../../node/store/log-check.js'
import { Store } from '../../node/store/store.js'
import { useTmpDirs } from '../helpers/tmp.js'

/*
 * What a member wrote since LevelDB's last compaction (its latest grants and votes) is only in the
 * write-ahead log the MANIFEST names. A store whose log was deleted opened on its tables alone,
 * silently, and the member could grant and vote again against what it lost.
 */
/** The store opened and closed again, or the error that refused it. */
const opened = async (path: string): Promise<Error | undefined> => Store.open({ path }).then(async s => { await s.close(); return undefined }, (e: Error) => e)

/** The one write-ahead log a closed store holds. */
async function onlyLog (path: string): Promise<string> {
  const logs = (await readdir(path)).filter(n => n.endsWith('.log'))
  expect(logs).toHaveLength(1)
  return logs[0] as string
}

describe('a store whose write-ahead log is gone', () => {
  const tmp = useTmpDirs()

  /** A store with records in its tables (written, closed, opened again) and newer ones only in its log. */
  async function logged (): Promise<{ path: string, log: string }> {
    const path = join(await tmp(), 'store')
    const db = new Level<string, string>(path, { valueEncoding: 'utf8' })
    await db.batch(Array.from({ length: 200 }, (_, i) => ({ type: 'put' as const, key: `old-${i}`, value: 'x'.repeat(100) })))
    await db.close()
    await db.open()
    await db.put('vote', 'given', { sync: true })
    await db.close()
    return { path, log: await onlyLog(path) }
  }

  it('is refused, naming the log; with its log it opens and holds what the log held', async () => {
    const { path, log } = await logged()
    const kept = await readFile(join(path, log))
    expect(kept.includes('given')).toBe(true)
    await rm(join(path, log))
    const err = await opened(path)
    expect(err?.name).toBe('DataDirError')
    expect(err?.message).toContain(`lost its write-ahead log ${log}, which its MANIFEST names`)
    // refused before LevelDB opened it: the log put back, nothing was lost
    await writeFile(join(path, log), kept)
    expect(await opened(path)).toBeUndefined()
    const db = new Level<string, string>(path, { valueEncoding: 'utf8' })
    expect(await db.get('vote')).toBe('given')
    await db.close()
  })

  it('is refused on a store of many tables, whose MANIFEST runs over several of its 32 KiB blocks', async () => {
    const path = join(await tmp(), 'store')
    // small tables: hundreds of them, each named in the MANIFEST with its first and last key
    const db = new Level<string, string>(path, { valueEncoding: 'utf8', writeBufferSize: 64 * 1024, maxFileSize: 16 * 1024 } as any)
    for (let b = 0; b < 40; b++) await db.batch(Array.from({ length: 500 }, (_, i) => ({ type: 'put' as const, key: `${String(b * 500 + i).padStart(8, '0')}-${'k'.repeat(1_000)}`, value: 'v'.repeat(200) })))
    await db.close()
    await db.open()
    await db.close()
    const names = await readdir(path)
    const manifest = names.find(n => n.startsWith('MANIFEST-')) as string
    expect((await readFile(join(path, manifest))).length).toBeGreaterThan(2 * 32_768)
    expect(await opened(path)).toBeUndefined()
    // the open above wrote a new log, and deleted the one before it
    await rm(join(path, (await readdir(path)).find(n => n.endsWith('.log')) as string))
    expect((await opened(path))?.message).toContain('lost its write-ahead log')
  })

  it('a store in use, its logs turning over, is never taken for one that lost its log (the check runs before LevelDB\'s lock)', async () => {
    const path = join(await tmp(), 'store')
    // a small write buffer: a new log every few writes, the one before it deleted
    const db = new Level<string, string>(path, { valueEncoding: 'utf8', writeBufferSize: 16 * 1024 } as any)
    await db.open()
    let writing = true
    const writer = (async () => {
      for (let i = 0; writing; i++) await db.put(`k${i % 5_000}`, 'v'.repeat(500))
    })()
    let checks = 0
    try {
      const until = Date.now() + 2_000
      while (Date.now() < until) {
        await refuseMissingLog(path)
        checks++
      }
    } finally {
      writing = false
      await writer
      await db.close()
    }
    expect(checks).toBeGreaterThan(100)
  })

  it('a new store, and one opened and closed again and again, open', async () => {
    const path = join(await tmp(), 'store')
    for (let i = 0; i < 3; i++) expect(await opened(path)).toBeUndefined()
  })
})

describe('a store whose write-ahead log was cut short after a clean stop', () => {
  const tmp = useTmpDirs()

  /** A Store written through and closed cleanly: its newest writes are in its log alone. */
  async function stopped (): Promise<{ path: string, log: string }> {
    const path = join(await tmp(), 'store')
    const store = await Store.open({ path })
    for (let i = 0; i < 200; i++) await store.meta.put(`k${i}`, 'x'.repeat(200), { sync: i % 50 === 0 })
    await store.close()
    return { path, log: await onlyLog(path) }
  }

  it('is refused, naming the log and both lengths; with its log whole it opens and holds every write', async () => {
    const { path, log } = await stopped()
    const whole = await readFile(join(path, log))
    // LevelDB alone opens on what is left, silently: the cut looks like a crash mid-write
    await truncate(join(path, log), Math.floor(whole.length / 2))
    const err = await opened(path)
    expect(err?.name).toBe('DataDirError')
    expect(err?.message).toContain(`write-ahead log ${log} of ${Math.floor(whole.length / 2)} bytes, where it had ${whole.length}`)
    // refused before LevelDB opened it: the whole log put back, nothing was lost
    await writeFile(join(path, log), whole)
    const store = await Store.open({ path })
    expect(await store.meta.get('k199')).toBe('x'.repeat(200))
    await store.close()
  })

  it('is refused when a newer log than the one the MANIFEST names (a stop during a compaction) was cut short', async () => {
    const { path, log } = await stopped()
    const mark = JSON.parse(await readFile(join(path, 'CLOSED-LOG'), 'utf8'))
    expect(Object.keys(mark.logs)).toEqual([log])
    // as LevelDB leaves a stop during a compaction: the newest writes in the next log, not yet named
    const next = `${String(Number(log.slice(0, -4)) + 1).padStart(6, '0')}.log`
    await writeFile(join(path, next), Buffer.alloc(5_000))
    await writeFile(join(path, 'CLOSED-LOG'), JSON.stringify({ ...mark, logs: { ...mark.logs, [next]: 5_000 } }))
    await truncate(join(path, next), 1_000)
    expect((await opened(path))?.message).toContain(`write-ahead log ${next} of 1000 bytes, where it had 5000`)
  })

  it('is refused when its mark of the logs\' lengths cannot be read (the mark is written whole or not at all): naming the mark; without it, the store opens', async () => {
    const { path } = await stopped()
    // written aside and renamed: nothing of the writing is left beside it
    expect((await readdir(path)).filter(f => f.includes('CLOSED-LOG'))).toEqual(['CLOSED-LOG'])
    for (const garbage of ['', '{"log":', 'garbage\n', '{"log":"7","logs":{}}', '{"log":7,"logs":{"000007.log":"lost"}}']) {
      await writeFile(join(path, 'CLOSED-LOG'), garbage)
      const err = await opened(path)
      expect(err?.name).toBe('DataDirError')
      expect(err?.message).toContain(`${join(path, 'CLOSED-LOG')}, that cannot be read`)
      expect(err?.message).toContain(`delete ${join(path, 'CLOSED-LOG')}`)
    }
    await rm(join(path, 'CLOSED-LOG'))
    expect(await opened(path)).toBeUndefined()
  })

  it('a store stopped cleanly again and again opens each time; one that was not (kill -9) is left to LevelDB\'s crash recovery', async () => {
    const { path } = await stopped()
    for (let i = 0; i < 3; i++) expect(await opened(path)).toBeUndefined()
    // no clean stop noted (the mark is written at close): a cut tail is what a crash leaves
    const again = await stopped()
    await rm(join(again.path, 'CLOSED-LOG'))
    await truncate(join(again.path, again.log), 100)
    expect(await opened(again.path)).toBeUndefined()
  })
})
