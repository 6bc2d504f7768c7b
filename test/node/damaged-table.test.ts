import { randomBytes } from 'node:crypto'
import { open, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { useTmpDirs } from '../helpers/tmp.js'

/*
 * A damaged LevelDB table is not found by LevelDB at open (it reads a table when a key in it is
 * asked for), and classic-level reads without LevelDB's block checksums: a store opened on one
 * answered requests until one read the damaged block (a listing failed with a 500), or served what
 * the damage made of it (a changed value, keys that vanished), and the member granted and voted on
 * that. Every table's blocks are checked before the open, and the store is read whole after it.
 */
describe('a store with a damaged table', () => {
  const tmp = useTmpDirs()

  /** A store whose entries are in a table (.ldb), not only in LevelDB's log: closed, opened again (the log is written out as a table) and closed. Random keys and values: the blocks are not compressed, so a damaged byte stays a byte of a key or a value. */
  async function tabled (): Promise<string> {
    const path = join(await tmp(), 'store')
    const db = new Level<string, string>(path, { valueEncoding: 'utf8' })
    const tasks = db.sublevel<string, string>('tasks', { valueEncoding: 'utf8' })
    await tasks.batch(Array.from({ length: 2_000 }, (_, i) => ({ type: 'put' as const, key: randomBytes(32).toString('hex'), value: JSON.stringify({ n: i, pad: randomBytes(60).toString('hex') }) })))
    await db.close()
    const again = new Level(path)
    await again.open()
    await again.close()
    return path
  }

  /** The largest table's name and bytes. */
  async function biggestTable (path: string): Promise<{ file: string, bytes: Buffer }> {
    const tables = (await readdir(path)).filter(n => n.endsWith('.ldb'))
    const sizes = await Promise.all(tables.map(async n => (await stat(join(path, n))).size))
    const file = join(path, tables[sizes.indexOf(Math.max(...sizes))] as string)
    const bytes = await readFile(file)
    expect(bytes.length).toBeGreaterThan(20_000)
    return { file, bytes }
  }

  async function overwrite (file: string, at: number, text: string): Promise<void> {
    const handle = await open(file, 'r+')
    await handle.write(Buffer.from(text), 0, text.length, at)
    await handle.close()
  }

  const refusal = async (path: string): Promise<Error | undefined> => Store.open({ path }).then(async s => { await s.close(); return undefined }, (e: Error) => e)

  it('a key that still decodes, out of order: refused by its block\'s checksum (LevelDB alone skipped the keys after it)', async () => {
    const path = await tabled()
    const { file, bytes } = await biggestTable(path)
    let at = -1
    for (let k = 0; k < 10; k++) at = bytes.indexOf('!tasks!', at + 1)
    await overwrite(file, at + 7, 'XXXXXXXXXXXXXXXX')
    const err = await refusal(path)
    expect(err?.name).toBe('DataDirError')
    expect(err?.message).toMatch(/store at .*store has a damaged table \(\d+\.ldb: the block at \d+ \(\d+ bytes\) fails its checksum\).*Restore the data dir from a backup/)
  })

  it('a changed value: refused by its block\'s checksum (LevelDB alone served the changed value)', async () => {
    const path = await tabled()
    const { file, bytes } = await biggestTable(path)
    await overwrite(file, bytes.indexOf('"n":1000') + 5, '7')
    expect((await refusal(path))?.message).toMatch(/has a damaged table \(.*fails its checksum\)/)
  })

  it('a live table cut short (no footer): refused by reading the store whole, in LevelDB\'s words', async () => {
    const path = await tabled()
    const { file, bytes } = await biggestTable(path)
    await truncate(file, bytes.length - 48)
    const err = await refusal(path)
    expect(err?.name).toBe('DataDirError')
    expect(err?.message).toMatch(/store at .*store cannot be read whole \((Corruption|IO error): .*\).*Restore the data dir from a backup/)
  })

  it('opens undamaged, and past a table a crash left half written (no footer, not live: LevelDB deletes it)', async () => {
    const path = await tabled()
    await writeFile(join(path, '999999.ldb'), randomBytes(10_000))
    const store = await Store.open({ path })
    expect(store.status).toBe('open')
    expect(await store.tasks.count()).toBe(2_000)
    await store.close()
  })
})
