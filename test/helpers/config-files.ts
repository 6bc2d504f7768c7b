import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'vitest'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { startDaemon } from '../../node/daemon/daemon.js'
import type { Daemon } from '../../node/daemon/daemon.js'

/** Writes `json` as the config file `dir/name` and expects it refused, by an InvalidConfigError whose message matches. */
export async function expectFileRefused (dir: string, name: string, json: unknown, message: RegExp): Promise<void> {
  await writeFile(join(dir, name), JSON.stringify(json))
  await expect(resolveDaemonConfig({ config: join(dir, name) }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(message) })
}

/** A daemon that runs no agent and no task layer, on `dir/data`, from the config file `dir/config` when one is named. */
export async function startBare (dir: string, data: string, config?: string): Promise<Daemon> {
  return await startDaemon(await resolveDaemonConfig({ ...(config === undefined ? {} : { config: join(dir, config) }), data: join(dir, data), api: '127.0.0.1:0', agents: 'none' }, {}), { tasks: false })
}
