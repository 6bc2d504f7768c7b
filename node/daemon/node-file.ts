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
  const malformed = (wrong: string): MalformedNodeFileError => new MalformedNodeFileError(`${file} is malformed (${wrong}); a daemon writes it at start: restart the node, or pass --api URL`)
  let f: unknown
  try { f = JSON.parse(text) } catch { throw malformed('not JSON') }
  const wrong = whatIsWrong(f)
  if (wrong !== undefined) throw malformed(wrong)
  return f as NodeFile
}

/** What keeps a parsed node.json from being one a daemon wrote, if anything. */
function whatIsWrong (f: unknown): string | undefined {
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return 'not a JSON object'
  const { api, pid, peerId, addrs } = f as Partial<NodeFile>
  if (typeof api !== 'string' || !/^https?:\/\//.test(api)) return '"api" is not an http(s) URL'
  if (typeof pid !== 'number' || typeof peerId !== 'string' || !Array.isArray(addrs)) return 'it lacks "pid", "peerId" or "addrs"'
  return undefined
}
