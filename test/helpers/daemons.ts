import { join } from 'node:path'
import { afterEach } from 'vitest'
import { startDaemonProcess } from '../../sim/daemon-process.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'

/**
 * Starts `agentmesh node` daemons as child processes, each on DIR/NAME with a free API port (and
 * `args` after), joined through `bootstrap` when given; every one left is killed after the test.
 */
export function useDaemons (args: string[] = []): (dir: string, name: string, bootstrap?: DaemonProcess) => Promise<DaemonProcess> {
  const running: DaemonProcess[] = []
  afterEach(() => { for (const d of running.splice(0)) d.proc.kill('SIGKILL') })
  return async (dir, name, bootstrap) => {
    const d = await startDaemonProcess(['--data', join(dir, name), '--api', '127.0.0.1:0', ...args, ...(bootstrap === undefined ? [] : ['--bootstrap', bootstrap.addrs[0] as string])])
    running.push(d)
    return d
  }
}
