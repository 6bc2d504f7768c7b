import { DEFAULT_STOP_TIMEOUT_MS, resolveDaemonConfig } from '../daemon/config.js'
import { collect, positiveWholeNumber } from './options.js'
import { errorLine, line, outputOwner } from './output.js'
import type { Daemon } from '../daemon/daemon.js'
import type { Command } from 'commander'

export interface NodeFlags {
  llmBaseUrl?: string
  /** repeatable, and each may be a comma list */
  llmModel?: string[]
  llmApiKeyFile?: string
  embeddingsModel?: string
  apiTokenFile?: string
  agents?: string
  agentsModule?: string
  data?: string
  listen?: string[]
  bootstrap?: string[]
  api?: string
  mesh?: string
  swarmKey?: string
  config?: string
  /** `NAME=COMMAND` or `NAME=URL`, repeatable: MCP servers whose tools the node offers as `mcp.NAME.TOOL` */
  mcpServer?: string[]
  /** the task layer's lease; wins over AGENTMESH_LEASE_MS and the config file's tasks.leaseMs. @default 10_000 */
  leaseMs?: number
  logLevel?: string
  logFormat?: string
  /** the config file's stopTimeoutMs, for a program that runs the command. @default 5000 */
  stopTimeoutMs?: number
}

/** Adds `agentmesh node` and its flags to the program. Each flag wins over its AGENTMESH_* variable and the config file. */
export function addNodeCommand (program: Command): Command {
  return program.command('node')
    .description('run a mesh node (the daemon)')
    .option('--data <dir>', 'data dir: store and node key (default ~/.agentmesh)')
    .option('--listen <multiaddr>', 'libp2p listen address, repeatable (default /ip4/127.0.0.1/tcp/0)', collect)
    .option('--bootstrap <multiaddr>', 'any mesh member to join through, with /p2p/<id>; repeatable', collect)
    .option('--api <host:port>', 'control API address (default 127.0.0.1:7070; port 0 picks one)')
    .option('--api-token-file <file>', 'bearer token every API route requires (default: AGENTMESH_API_TOKEN; required when --api is not loopback)')
    .option('--mesh <name>', 'mesh name: topics and DHT are per mesh (default "default")')
    .option('--swarm-key <file>', 'pre-shared key: only peers with the same key connect')
    .option('--config <file>', 'JSON config file with the same options (flags win)')
    .option('--agents <names>', 'comma-separated built-in agents to run, or "none" (default: all)')
    .option('--agents-module <path>', 'ES module exporting more agents (default export or `agents`)')
    .option('--llm-base-url <url>', 'OpenAI-compatible endpoint (default: OPENAI_BASE_URL, else the OpenAI API)')
    .option('--llm-model <names>', 'models to serve, repeatable or comma-separated; the first is the default for llm.chat, agent and plan (default: AGENTMESH_MODEL; none: no LLM agents)', collect)
    .option('--llm-api-key-file <file>', 'file holding the API key (default: OPENAI_API_KEY)')
    .option('--embeddings-model <name>', 'model that embeds vector memory\'s texts, at the --llm-base-url endpoint (default: AGENTMESH_EMBEDDINGS_MODEL; none: memory records need vectors)')
    .option('--mcp-server <name=command|url>', 'offer an MCP server\'s tools as mcp.NAME.TOOL: a command line to start (stdio) or an http(s) URL; repeatable (config file: mcpServers)', collect)
    .option('--lease-ms <ms>', 'how long a claim on a task lasts unless renewed (default 10000; config file: tasks.leaseMs)', positiveWholeNumber('--lease-ms'))
    .option('--log-level <level>', 'operator log level on stderr: trace, debug, info, warn, error, fatal, silent (default info; AGENTMESH_LOG_LEVEL)')
    .option('--log-format <format>', 'operator log format: pretty or json (default pretty; AGENTMESH_LOG_FORMAT)')
    .action(runNodeCommand)
}

/**
 * `agentmesh node`: runs the daemon until SIGINT, SIGTERM or SIGHUP. The first signal stops it cleanly
 * (node.json removed, store closed, libp2p stopped); a second one, or a stop that hangs past
 * stopTimeoutMs, forces the exit.
 */
export async function runNodeCommand (flags: NodeFlags): Promise<void> {
  const config = await resolveDaemonConfig(flags)
  const stopTimeoutMs = config.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS
  let daemon: Daemon | undefined
  let signals = 0
  /** a signal's deadline for a start still under way: cleared once the start ends */
  let startDeadline: ReturnType<typeof setTimeout> | undefined
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
    // a signal during start-up is acted on once the start finished (or failed); a start that hangs
    // (a store that never opens) is not waited for past the stop timeout
    if (daemon !== undefined) stop(signal)
    else {
      startDeadline = setTimeout(() => {
        errorLine(`${signal} during start-up, and the start did not end within ${stopTimeoutMs} ms: exiting now`)
        process.exit(1)
      }, stopTimeoutMs)
      startDeadline.unref()
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // the terminal that started it closed: Node's default exit left node.json and its leases behind
  process.on('SIGHUP', onSignal)

  outputOwner.keepGoing = true
  // the daemon (libp2p and all) is loaded by this command only: the CLI's client commands start fast
  const { startDaemon } = await import('../daemon/daemon.js')
  try {
    daemon = await startDaemon(config)
  } catch (err) {
    // a refused start undoes what it started; should a handle outlive that, it must not keep a
    // failed daemon running (the error is printed, and the exit code set, by the caller)
    setTimeout(() => process.exit(process.exitCode ?? 1), 2_000).unref()
    throw err
  } finally {
    // the stop that follows (or the failed start's own exit) keeps its own time
    clearTimeout(startDeadline)
  }
  line(`peer id: ${daemon.nodeFile.peerId}`)
  for (const addr of daemon.nodeFile.addrs) line(`listening: ${addr}`)
  line(`api: ${daemon.nodeFile.api}`)
  line(`mesh: ${config.mesh}`)
  const capabilities = daemon.node.tasks?.runtime.capabilities().map(c => c.name) ?? []
  line(`capabilities: ${capabilities.length === 0 ? '(none)' : capabilities.join(', ')}`)
  line(daemon.llm === undefined
    ? 'llm: off (no model configured: set AGENTMESH_MODEL or --llm-model to offer llm.chat, agent and plan)'
    : `llm: ${(daemon.llm.models ?? [daemon.llm.model]).join(', ')} at ${daemon.llm.baseURL ?? 'the OpenAI API'}`)
  if (signals > 0) return stop('signal during start-up')
  line('ready')
}
