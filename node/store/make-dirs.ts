import { mkdir, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Stats } from 'node:fs'

/**
 * `mkdir -p`, one directory at a time, each tried once. Node's recursive mkdir loops for ever at a
 * full core where a directory's parent exists but making it says ENOENT (any path under /proc):
 * `agentmesh node --data /proc/1/x` hung without a word. Throws the errno error of the step that
 * failed: EEXIST when `path` is a file, ENOTDIR when an ancestor is.
 */
export async function makeDirs (path: string): Promise<void> {
  const missing: string[] = []
  // the path as given, not resolved: a ".." after a link is the link's parent, as the kernel (and
  // `mkdir -p`, and LevelDB after it) reads it, where resolve() took it away on the text
  for (let dir = path; ; dir = dirname(dir)) {
    const found = await statOrNone(dir)
    if (found !== undefined) {
      if (!found.isDirectory()) throw errno(dir === path ? 'EEXIST' : 'ENOTDIR', dir)
      break
    }
    missing.push(dir)
    if (dirname(dir) === dir) break
  }
  for (const dir of missing.reverse()) {
    await mkdir(dir).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
      // made meanwhile by another process, which is fine; a file is in the way; a link to nowhere is missing
      const found = await statOrNone(dir)
      if (found === undefined) throw errno('ENOENT', dir, 'a link to nowhere')
      if (!found.isDirectory()) throw err
    })
  }
}

async function statOrNone (path: string): Promise<Stats | undefined> {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
}

function errno (code: string, path: string, what = 'not a directory'): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${what}, ${path}`), { code, path })
}
