import { open, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Writes `text` to `file` and syncs it before resolving: a mark that must survive a crash right
 * after. Written aside and renamed over `file`, so a crash midway leaves the old file or the new
 * one, never a part of either: a mark that cannot be read is then damage, not a crash.
 */
export async function writeSyncedFile (file: string, text: string): Promise<void> {
  // one name, not one per process: a crash's leftover is written over by the next write, never piled up
  const aside = `${file}.tmp`
  try {
    const handle = await open(aside, 'w')
    try {
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(aside, file)
  } catch (err) {
    await rm(aside, { force: true })
    throw err
  }
  // the rename is the directory's change: synced too, or a power cut may undo it
  const dir = await open(dirname(file), 'r')
  try {
    await dir.sync()
  } catch (err: any) {
    // a file system that cannot sync a directory: the mark is in place all the same
    if (err?.code !== 'EINVAL' && err?.code !== 'ENOTSUP') throw err
  } finally {
    await dir.close()
  }
}
