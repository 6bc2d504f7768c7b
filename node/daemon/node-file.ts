import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MalformedNodeFileError } from '../errors.js'

/** What DIR/node.json holds, so scripts and the CLI can find a running daemon. */
export interface NodeFile {
  peerId: string
  addrs: string[]
  api: string
  pid: number
}

export const NODE_FILE = 'node.json'

export async function readNodeFile (dataDir: string): Promise<NodeFile> {
  const file = join(dataDir, NODE_FILE)
  const text = await readFile(file, 'utf8')
  let f: Partial<NodeFile> | null = null
  let wrong: string | undefined
  try { f = JSON.parse(text) } catch { wrong = 'not JSON' }
  wrong ??= f === null || typeof f !== 'object' || Array.isArray(f)
    ? 'not a JSON object'
    : typeof f.api !== 'string' || !/^https?:\/\//.test(f.api)
      ? '"api" is not an http(s) URL'
      : typeof f.pid !== 'number' || typeof f.peerId !== 'string' || !Array.isArray(f.addrs) ? 'it lacks "pid", "peerId" or "addrs"' : undefined
  if (wrong !== undefined) throw new MalformedNodeFileError(`${file} is malformed (${wrong}); a daemon writes it at start: restart the node, or pass --api URL`)
  return f as NodeFile
}
