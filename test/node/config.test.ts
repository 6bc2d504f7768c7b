import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { useTmpDirs } from '../helpers/tmp.js'

describe('daemon config', () => {
  const tmp = useTmpDirs()

  it('layers defaults < config file < environment < flags', async () => {
    const dir = await tmp()
    const file = join(dir, 'config.json')
    await writeFile(file, JSON.stringify({ mesh: 'from-file', api: '127.0.0.1:9001', data: join(dir, 'file-data'), bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'] }))
    const env = { AGENTMESH_MESH: 'from-env', AGENTMESH_API: '127.0.0.1:9002' }
    const config = await resolveDaemonConfig({ config: file, api: '127.0.0.1:9003' }, env)
    expect(config.api).toBe('127.0.0.1:9003')
    expect(config.mesh).toBe('from-env')
    expect(config.data).toBe(join(dir, 'file-data'))
    expect(config.bootstrap).toHaveLength(1)
    expect(config.listen).toEqual(['/ip4/127.0.0.1/tcp/0'])
  })

  it('splits list variables on commas', async () => {
    const config = await resolveDaemonConfig({}, { AGENTMESH_LISTEN: '/ip4/127.0.0.1/tcp/0, /memory/x' })
    expect(config.listen).toEqual(['/ip4/127.0.0.1/tcp/0', '/memory/x'])
  })

  it.each([
    [{ listen: ['/ip4/not-an-ip/tcp/1'] }, /listen/],
    [{ bootstrap: ['hello'] }, /bootstrap/],
    [{ api: 'localhost' }, /HOST:PORT/],
    [{ api: '127.0.0.1:99999' }, /port/],
    [{ mesh: 'bad mesh!' }, /mesh/]
  ])('rejects %j with a named error', async (flags, message) => {
    const err = await resolveDaemonConfig(flags, {}).catch(e => e)
    expect(err.name).toBe('InvalidConfigError')
    expect(err.message).toMatch(message)
  })

  it('names an unreadable, malformed or unknown-keyed config file', async () => {
    const dir = await tmp()
    await expect(resolveDaemonConfig({ config: join(dir, 'missing.json') }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/ENOENT/) })
    await writeFile(join(dir, 'bad.json'), '{oops')
    await expect(resolveDaemonConfig({ config: join(dir, 'bad.json') }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/not valid JSON/) })
    await writeFile(join(dir, 'extra.json'), '{"lisen": []}')
    await expect(resolveDaemonConfig({ config: join(dir, 'extra.json') }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/lisen/) })
  })
})
