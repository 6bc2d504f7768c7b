import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { createAgentNode } from '../../node/create-node.js'
import { readSwarmKey, writeSwarmKey } from '../../node/swarm-key.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { AgentNode } from '../../node/create-node.js'

describe('private mesh (swarm key)', () => {
  const tmp = useTmpDirs()

  async function node (dir: string, name: string, swarmKey?: Uint8Array): Promise<AgentNode> {
    return createAgentNode({ dataDir: join(dir, name), swarmKey, bootstrapRetryMaxMs: 200 })
  }

  it('connects peers with the same key and refuses peers with another key or none', async () => {
    const dir = await tmp()
    await writeSwarmKey(join(dir, 'k1'))
    await writeSwarmKey(join(dir, 'k2'))
    const k1 = await readSwarmKey(join(dir, 'k1'))
    const k2 = await readSwarmKey(join(dir, 'k2'))
    const a = await node(dir, 'a', k1)
    const same = await node(dir, 'same', k1)
    const other = await node(dir, 'other', k2)
    const none = await node(dir, 'none')
    try {
      const target = multiaddr(a.addrs()[0] as string)
      await same.libp2p.dial(target)
      await waitFor(() => a.libp2p.getConnections(same.peerId).length > 0, { what: 'a to see the inbound connection' })
      await expect(other.libp2p.dial(target, { signal: AbortSignal.timeout(3000) })).rejects.toThrow()
      await expect(none.libp2p.dial(target, { signal: AbortSignal.timeout(3000) })).rejects.toThrow()
      await expect(a.libp2p.dial(multiaddr(none.addrs()[0] as string), { signal: AbortSignal.timeout(3000) })).rejects.toThrow()
      expect(a.libp2p.getConnections(other.peerId)).toHaveLength(0)
      expect(a.libp2p.getConnections(none.peerId)).toHaveLength(0)
    } finally {
      await Promise.all([a, same, other, none].map(async n => n.stop()))
    }
  })

  it('never overwrites a key and rejects a malformed one', async () => {
    const dir = await tmp()
    await writeSwarmKey(join(dir, 'k'))
    await expect(writeSwarmKey(join(dir, 'k'))).rejects.toHaveProperty('code', 'EEXIST')
    await writeFile(join(dir, 'bad'), 'not a key')
    await expect(readSwarmKey(join(dir, 'bad'))).rejects.toHaveProperty('name', 'InvalidConfigError')
    await expect(readSwarmKey(join(dir, 'missing'))).rejects.toHaveProperty('name', 'InvalidConfigError')
    // a good key with a line after it (a second key pasted in): that line was read past without a word
    await writeFile(join(dir, 'extra'), `${(await readFile(join(dir, 'k'), 'utf8')).trim()}\nextra\n`)
    await expect(readSwarmKey(join(dir, 'extra'))).rejects.toHaveProperty('name', 'InvalidConfigError')
    // trailing blank lines and CRLF endings are still a key
    await writeFile(join(dir, 'crlf'), `${(await readFile(join(dir, 'k'), 'utf8')).trim().replace(/\n/g, '\r\n')}\r\n\r\n`)
    expect(await readSwarmKey(join(dir, 'crlf'))).toEqual(await readSwarmKey(join(dir, 'k')))
  })
})
