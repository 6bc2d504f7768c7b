import { readFile, writeFile } from 'node:fs/promises'
import { generateKey } from '@libp2p/pnet'
import { InvalidConfigError } from './errors.js'

/**
 * Swarm keys in the go-ipfs format that @libp2p/pnet reads:
 * `/key/swarm/psk/1.0.0/`, `/base16/`, then 64 hex digits.
 */
export async function writeSwarmKey (path: string): Promise<void> {
  const key = new Uint8Array(95)
  generateKey(key)
  // 'wx': never overwrite a key that a mesh may already depend on
  await writeFile(path, key, { flag: 'wx', mode: 0o600 })
}

export async function readSwarmKey (path: string): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err: any) {
    throw new InvalidConfigError(`cannot read swarm key ${path}: ${err.code ?? err.message}`)
  }
  const lines = bytes.toString('utf8').trim().split(/\r?\n/)
  // a line past the key (a second key pasted in, say) was read past without a word
  if (lines.length !== 3 || lines[0] !== '/key/swarm/psk/1.0.0/' || lines[1] !== '/base16/' || !/^[0-9a-fA-F]{64}$/.test(lines[2] ?? '')) {
    throw new InvalidConfigError(`swarm key ${path} is not a /key/swarm/psk/1.0.0/ base16 key (make one with: agentmesh keygen --swarm-key FILE)`)
  }
  return new Uint8Array(Buffer.from(`${lines[0]}\n${lines[1]}\n${(lines[2] as string).toLowerCase()}\n`, 'utf8'))
}
