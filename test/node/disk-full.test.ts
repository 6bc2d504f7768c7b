import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store } from '../../node/store/store.js'
import { CAN_MOUNT, fillDisk, mountSmallDisk } from '../helpers/small-disk.js'
import { useTmpDirs } from '../helpers/tmp.js'

describe.skipIf(!CAN_MOUNT)('a store on a disk that fills (a tmpfs: root only)', () => {
  const tmp = useTmpDirs()

  it('takes no write after the first that failed, even once there is room, and opens whole at the next start', async () => {
    const dir = await tmp()
    const unmount = mountSmallDisk(dir, 8 * 1024 * 1024)
    try {
      const path = join(dir, 'store')
      const store = await Store.open({ path })
      await store.meta.put('before', 'kept', { sync: true })
      await fillDisk(join(dir, 'filler'))
      // the room left goes to the log's writes until one fails
      let failure: any
      for (let i = 0; i < 100_000 && failure === undefined; i++) {
        await store.write([store.meta.putOp(`k${i}`, 'x'.repeat(1_000))], { sync: true }).catch((err: unknown) => { failure = err })
      }
      expect(failure?.name).toBe('StoreFailedError')
      expect(failure.message).toMatch(/No space left on device.*free disk space, then restart the node/)
      expect(store.writeFailure?.name).toBe('StoreFailedError')
      await rm(join(dir, 'filler'))
      // room again, and still no write: LevelDB would append it after the failed one's torn bytes,
      // and the next start would find the log damaged in its middle and refuse the store
      for (const write of [
        async () => store.meta.put('after', 'lost', { sync: true }),
        async () => store.meta.del('before', { sync: true }),
        async () => store.write([store.meta.putOp('after', 'lost')], { sync: true })
      ]) {
        expect((await write().then(() => undefined, (err: Error) => err))?.name).toBe('StoreFailedError')
      }
      await store.close()

      // a start on a disk still full is told so, not told the store is damaged
      await fillDisk(join(dir, 'filler'))
      const refused = await Store.open({ path }).then(async s => { await s.close(); return undefined }, (err: Error) => err)
      expect(refused?.name).toBe('DataDirError')
      expect(refused?.message).toMatch(/the disk is full \(the store is not damaged\): free disk space, then start again/)
      await rm(join(dir, 'filler'))

      // with room, the store opens (no damage to refuse) and holds what was written before the failure
      const again = await Store.open({ path })
      try {
        expect(await again.meta.get('before')).toBe('kept')
        expect(await again.meta.get('after')).toBeUndefined()
        expect(await again.meta.get('k0')).toBe('x'.repeat(1_000))
        await again.meta.put('after', 'written', { sync: true })
      } finally {
        await again.close()
      }
    } finally {
      unmount()
    }
  })
})
