import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { useTmpDirs } from '../helpers/tmp.js'

/*
 * A damaged LevelDB table is not found by LevelDB at open (it reads a table when a key in it is
 * asked for), and a store opened on it answered requests until one read the damaged block: a
 * listing failed with a 500, counts came out short, and the member granted and voted without the
 * state the block held. The store is read whole at open, so the start is refused instead.
 */
describe('a store with a damaged table', () => {
  const tmp = useTmpDirs()

  /** A store whose entries are in a table (.ldb), not only in LevelDB's log: closed, opened again (the log is written out as a table) and closed. */
  async function tabled (): Promise<string> {
    const path = join(await tmp(), 'store')
    const db = new Level<string, string>(path, { valueEncoding: 'utf8' })
    const meta = db.sublevel<string, string>('created', { valueEncoding: 'utf8' })
    await meta.batch(Array.from({ length: 3_000 }, (_, i) => ({ type: 'put' as const, key: `${String(i).padStart(16, '0')}/${'ab'.repeat(32)}`, value: JSON.stringify({ n: i, text: `entry ${i}` }) })))
    await db.close()
    const again = new Level(path)
    await again.open()
    await again.close()
    return path
  }

  /** Overwrites the middle of the largest table with 0xff bytes, its index and footer left alone. */
  async function damageTable (path: string): Promise<string> {
    const tables = (await readdir(path)).filter(n => n.endsWith('.ldb'))
    const sizes = await Promise.all(tables.map(async n => (await stat(join(path, n))).size))
    const biggest = tables[sizes.indexOf(Math.max(...sizes))] as string
    const size = Math.max(...sizes)
    expect(size).toBeGreaterThan(20_000)
    const file = await open(join(path, biggest), 'r+')
    await file.write(Buffer.alloc(Math.floor(size / 2), 0xff), 0, Math.floor(size / 2), Math.floor(size / 4))
    await file.close()
    return biggest
  }

  it('is refused at open, naming the store and LevelDB\'s words, not opened to fail a later read', async () => {
    const path = await tabled()
    await damageTable(path)
    const err = await Store.open({ path }).then(async s => { await s.close(); return undefined }, (e: unknown) => e)
    expect((err as Error).name).toBe('DataDirError')
    expect((err as Error).message).toMatch(/store at .*store cannot be read whole \(.*Corruption.*\).*Restore the data dir from a backup/)
  })

  it('an undamaged store of the same entries opens', async () => {
    const store = await Store.open({ path: await tabled() })
    expect(store.status).toBe('open')
    await store.close()
  })
})
