import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

/** What DIR/node.json holds, so scripts and the CLI can find a running daemon. */
export interface NodeFile {
  peerId: string
  addrs: string[]
  api: string
  pid: number
}

export const NODE_FILE = 'node.json'

export async function readNodeFile (dataDir: string): Promise<NodeFile> {
  return JSON.parse(await readFile(join(dataDir, NODE_FILE), 'utf8'))
}
