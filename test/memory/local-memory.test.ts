import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { LocalMemory } from '../../node/memory/local-memory.js'
import { Store } from '../../node/store/store.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { MemoryEntry } from '../../protocols/memory/index.js'

const at = (id: string, version: number, deleted = false): MemoryEntry => ({ collection: 'c', id, version, writer: 'w', ...(deleted ? { deleted: true } : { vector: [1, 0, 0] }) })

describe('a replica\'s put says which records its tombstones took away', () => {
  const tmp = useTmpDirs()

  it('names an id only when its record was held before the put and is gone after it', async () => {
    const store = await Store.open({ path: join(await tmp(), 'db') })
    try {
      const local = new LocalMemory(store)
      expect((await local.put([at('a', 1), at('b', 1)])).removed).toEqual([])
      // a tombstone of a held record, named once though sent twice
      expect((await local.put([at('a', 2, true), at('a', 3, true)])).removed).toEqual(['a'])
      // nothing held: a tombstone of a deleted record, and of an id never stored
      expect((await local.put([at('a', 4, true), at('never', 1, true)])).removed).toEqual([])
      // a tombstone older than a put of the same batch takes nothing: the newer put stands
      const mixed = await local.put([at('b', 3), at('b', 2, true)])
      expect(mixed.removed).toEqual([])
      expect(local.search('c', [1, 0, 0], 5).map(h => h.id)).toEqual(['b'])
      // a tombstone older than the kept record takes nothing either
      expect((await local.put([at('b', 1, true)])).removed).toEqual([])
    } finally {
      await store.close()
    }
  })
})
