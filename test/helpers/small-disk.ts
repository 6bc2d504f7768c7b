import { execFileSync } from 'node:child_process'
import { open } from 'node:fs/promises'

/** Whether this process may mount a tmpfs (root): the small-disk tests are skipped otherwise. */
export const CAN_MOUNT = process.getuid?.() === 0

/** A tmpfs of `bytes` mounted on `dir`: a disk that really fills. Answers the unmount. */
export function mountSmallDisk (dir: string, bytes: number): () => void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir])
  return () => { execFileSync('umount', ['-l', dir]) }
}

/** Writes zeros to `file` until the disk is full. */
export async function fillDisk (file: string): Promise<void> {
  const handle = await open(file, 'w')
  const chunk = Buffer.alloc(64 * 1024)
  try {
    for (;;) await handle.write(chunk)
  } catch (err: any) {
    if (err?.code !== 'ENOSPC') throw err
  } finally {
    await handle.close().catch(() => {})
  }
}
