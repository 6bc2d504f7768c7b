import { open } from 'node:fs/promises'

/** Writes `text` to `file` and syncs it before resolving: a mark that must survive a crash right after. */
export async function writeSyncedFile (file: string, text: string): Promise<void> {
  const handle = await open(file, 'w')
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
