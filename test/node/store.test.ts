import { appendFile, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { DROPPED_DATA_MARK } from '../../node/store/dropped-data.js'
import { hasValidFinal, makeTask, newRecord, resultHash, statementBytes } from '../../protocols/task/index.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { FinalValue, TaskRecord } from '../../protocols/task/index.js'

const SUBMITTER = '12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'
const OTHER = '12D3KooWBTn2n5nxGB6qhtWcD3HJjam2EZBTNoj7kRMQEBdYohwg'
const task = makeTask({ capability: 'echo', input: 1, submitter: SUBMITTER, maxAttempts: 1, timeoutMs: 1, deadline: 1 })
const record = newRecord(task, { epoch: 0, members: [SUBMITTER, OTHER] }, 1)

/** A record as a replica keeps it at the end: moved once, completed with a certificate of real signatures. */
async function certifiedRecord (): Promise<TaskRecord> {
  const keys = await Promise.all([0, 1, 2].map(async () => generateKeyPair('Ed25519')))
  const members = keys.map(k => peerIdFromPrivateKey(k).toString())
  const value: FinalValue = { state: 'completed', claimId: 'c1', resultHash: resultHash({ ok: true }) }
  const votes = await Promise.all(keys.slice(0, 2).map(async (k, i) => ({ peer: members[i] as string, term: 3, sig: Buffer.from(await k.sign(statementBytes({ id: task.id, generation: 0, epoch: 1, term: 3, value }))).toString('base64') })))
  return {
    ...record,
    placement: { epoch: 1, members },
    previous: [record.placement],
    attempts: [{ claimId: 'c1', generation: 0, peer: OTHER, startedAt: 2, endedAt: 3, outcome: 'completed' }],
    final: { state: 'completed', at: 3, generation: 0, claimId: 'c1', peer: OTHER, resultSize: 11, cert: { id: task.id, generation: 0, epoch: 1, value, votes } },
    journal: { step: { tokens: 1 } },
    updatedAt: 3
  }
}

/** A store of five records whose log has one flipped bit in its first record: LevelDB drops the rest of the block, the records with it. */
async function storeWithFlippedLogBit (dir: string): Promise<string> {
  const path = join(dir, 'store')
  const store = await Store.open({ path })
  for (let i = 0; i < 5; i++) await store.tasks.put(`t${i}`, record, { sync: true })
  await store.close()
  const log = join(path, (await readdir(path)).find(f => f.endsWith('.log')) as string)
  const bytes = await readFile(log)
  bytes[40] = (bytes[40] as number) ^ 1
  await writeFile(log, bytes)
  return path
}

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

  it('keeps a record\'s placement and certified final across a reopen, still valid', async () => {
    const path = join(await tmp(), 'store')
    const certified = await certifiedRecord()
    expect(hasValidFinal(certified)).toBe(true)
    const store = await Store.open({ path })
    await store.tasks.put(certified.task.id, certified, { sync: true })
    await store.close()
    const again = await Store.open({ path })
    const read = await again.tasks.get(certified.task.id)
    expect(read).toEqual(certified)
    expect(hasValidFinal(read!)).toBe(true)
    await again.close()
  })

  it('skips a record without a placement, or with a final without a certificate, as corrupt', async () => {
    const path = join(await tmp(), 'store')
    const certified = await certifiedRecord()
    const { placement: _p, ...unplaced } = record
    const { cert: _c, ...uncertified } = certified.final!
    const raw = new Level<string, string>(path, { valueEncoding: 'utf8' })
    await raw.sublevel<string, string>('tasks', { valueEncoding: 'utf8' }).batch([
      { type: 'put', key: 'a', value: JSON.stringify(record) },
      { type: 'put', key: 'b', value: JSON.stringify(unplaced) },
      { type: 'put', key: 'c', value: JSON.stringify({ ...certified, final: uncertified }) },
      { type: 'put', key: 'd', value: JSON.stringify(certified) }
    ])
    await raw.close()
    const store = await Store.open({ path })
    const seen = []
    for await (const [key] of store.tasks.entries()) seen.push(key)
    expect(seen).toEqual(['a', 'd'])
    expect((await store.figures()).corruptRecords).toBe(2)
    await store.close()
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
    // b read twice, counted once: the figure is of records
    expect((await store.figures()).corruptRecords).toBe(2)
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

  it('refuses a store LevelDB opened by dropping a damaged log record, and keeps refusing it until the mark is deleted', async () => {
    const path = await storeWithFlippedLogBit(await tmp())
    const first = await Store.open({ path }).catch(e => e)
    expect(first.name).toBe('DataDirError')
    expect(first.message).toMatch(/dropped damaged data .*Corruption: checksum mismatch/)
    // the open that dropped the data deleted the damaged log: the mark is what refuses the next start
    const second = await Store.open({ path }).catch(e => e)
    expect(second.name).toBe('DataDirError')
    expect(second.message).toMatch(/marked at an earlier start/)
    await rm(join(path, DROPPED_DATA_MARK))
    const accepted = await Store.open({ path })
    expect(await accepted.tasks.get('t0')).toBeUndefined()
    await accepted.close()
  })

  it('refuses such a store even when the mark cannot be written, and says the next start will not see it', async () => {
    const path = await storeWithFlippedLogBit(await tmp())
    // the mark is written aside (its name and .tmp) and renamed: that name leads into a directory
    // that is not there, so there is no mark to read and none can be written
    await symlink(join(path, 'missing', 'mark'), join(path, `${DROPPED_DATA_MARK}.tmp`))
    const refused = await Store.open({ path }).catch(e => e)
    expect(refused.name).toBe('DataDirError')
    expect(refused.message).toMatch(/dropped damaged data .*could not be written/)
  })

  it('refuses a store whose mark is there but cannot be read', async () => {
    const path = join(await tmp(), 'store')
    await (await Store.open({ path })).close()
    await mkdir(join(path, DROPPED_DATA_MARK))
    const refused = await Store.open({ path }).catch(e => e)
    expect(refused.name).toBe('DataDirError')
    expect(refused.message).toMatch(/marked at an earlier start: \(the mark cannot be read: EISDIR\)/)
  })
})
