import { appendFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'

const record = newRecord(makeTask({ capability: 'echo', input: 1, submitter: '12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6', maxAttempts: 1, timeoutMs: 1, deadline: 1 }))
import { useTmpDirs } from '../helpers/tmp.js'

describe('store', () => {
  const tmp = useTmpDirs()

  it('keeps records across a close and reopen', async () => {
    const path = join(await tmp(), 'store')
    const store = await Store.open({ path })
    await store.tasks.put('t1', record, { sync: true })
    await store.results.put('t1', { claimId: 'c', peer: 'p', value: { ok: true }, size: 11, at: 1 })
    await store.close()
    const again = await Store.open({ path })
    expect(await again.tasks.get('t1')).toEqual(record)
    expect((await again.results.get('t1'))?.value).toEqual({ ok: true })
    expect(await again.tasks.get('missing')).toBeUndefined()
    expect(await again.figures()).toMatchObject({ tasks: 1, results: 1, leases: 0, deadLetters: 0 })
    await again.close()
  })

  it('refuses a second open of the same directory with DataDirInUseError', async () => {
    const path = join(await tmp(), 'store')
    const store = await Store.open({ path })
    await expect(Store.open({ path })).rejects.toHaveProperty('name', 'DataDirInUseError')
    await store.meta.put('still', 'writable')
    expect(await store.meta.get('still')).toBe('writable')
    await store.close()
  })

  it('skips and counts corrupt records instead of failing', async () => {
    const path = join(await tmp(), 'store')
    const raw = new Level<string, string>(path, { valueEncoding: 'utf8' })
    await raw.sublevel<string, string>('tasks', { valueEncoding: 'utf8' }).batch([
      { type: 'put', key: 'a', value: JSON.stringify(record) },
      { type: 'put', key: 'b', value: '{not json' },
      { type: 'put', key: 'c', value: JSON.stringify(record) },
      { type: 'put', key: 'd', value: '{"json":"but not a task record"}' }
    ])
    await raw.close()
    const store = await Store.open({ path })
    const seen = []
    for await (const [key] of store.tasks.entries()) seen.push(key)
    expect(seen).toEqual(['a', 'c'])
    expect(await store.tasks.get('b')).toBeUndefined()
    expect((await store.figures()).corruptRecords).toBe(3)
    await store.close()
  })

  it('opens a store whose log file has garbage appended', async () => {
    const path = join(await tmp(), 'store')
    const store = await Store.open({ path })
    await store.tasks.put('t', record, { sync: true })
    await store.close()
    const log = (await readdir(path)).find(f => f.endsWith('.log'))
    expect(log).toBeDefined()
    await appendFile(join(path, log as string), Buffer.from('\x00\xff garbage \x13\x37'.repeat(20), 'binary'))
    const again = await Store.open({ path })
    expect(await again.tasks.get('t')).toEqual(record)
    await again.close()
  })
})
