import { resolveDaemonConfig } from '../daemon/config.js'
import { startDaemon } from '../daemon/daemon.js'
import type { Daemon } from '../daemon/daemon.js'
import { errorLine, line } from './output.js'

export interface NodeFlags {
  llmBaseUrl?: string
  llmModel?: string
  llmApiKeyFile?: string
  agents?: string
  agentsModule?: string
  data?: string
  listen?: string[]
  bootstrap?: string[]
  api?: string
  mesh?: string
  swarmKey?: string
  config?: string
  /** @default 5000 */
  stopTimeoutMs?: number
}

/**
 * `agentmesh node`: runs the daemon until SIGINT or SIGTERM. The first signal stops it cleanly
 * (node.json removed, store closed, libp2p stopped); a second one, or a stop that hangs past
 * stopTimeoutMs, forces the exit.
 */
export async function runNodeCommand (flags: NodeFlags): Promise<void> {
  const config = await resolveDaemonConfig(flags)
  const stopTimeoutMs = flags.stopTimeoutMs ?? 5000
  let daemon: Daemon | undefined
  let signals = 0
  const stop = (signal: string): void => {
    line(`${signal}: stopping`)
    const force = setTimeout(() => {
      errorLine(`stop took over ${stopTimeoutMs} ms: exiting now`)
      process.exit(1)
    }, stopTimeoutMs)
    force.unref()
    ;(daemon?.stop() ?? Promise.resolve()).then(() => {
      line('stopped')
      process.exit(0)
    }, (err: Error) => {
      errorLine(`stop failed: ${err.message}`)
      process.exit(1)
    })
  }
  // installed before anything is printed: a signal sent as soon as "ready" is read must find them
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++
    if (signals > 1) {
      errorLine(`second ${signal}: exiting now`)
      process.exit(130)
    }
    // a signal during start-up is acted on once the start finished (or failed)
    if (daemon !== undefined) stop(signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  daemon = await startDaemon(config)
  line(`peer id: ${daemon.nodeFile.peerId}`)
  for (const addr of daemon.nodeFile.addrs) line(`listening: ${addr}`)
  line(`api: ${daemon.nodeFile.api}`)
  line(`mesh: ${config.mesh}`)
  const capabilities = daemon.node.tasks?.runtime.capabilities().map(c => c.name) ?? []
  line(`capabilities: ${capabilities.length === 0 ? '(none)' : capabilities.join(', ')}`)
  line(daemon.llm === undefined
    ? 'llm: off (no model configured: set AGENTMESH_MODEL or --llm-model to offer llm.chat, agent and plan)'
    : `llm: ${daemon.llm.model} at ${daemon.llm.baseURL ?? 'the OpenAI API'}`)
  if (signals > 0) return stop('signal during start-up')
  line('ready')
}
