import { Command, CommanderError, Option } from 'commander'
import { writeSwarmKey } from '../swarm-key.js'
import { VERSION } from '../version.js'
import { apiRequest, resolveApiUrl, useApiToken } from './client.js'
import { addMcpCommand } from './mcp-command.js'
import { addMemoryCommand } from './memory-command.js'
import { addSignalCommands } from './signal-commands.js'
import { addNodeCommand } from './node-command.js'
import { addTaskCommands } from './task-commands.js'
import { addWatchCommand } from './watch-command.js'
import { addTraceCommand } from './trace-command.js'
import { addExamples } from './examples.js'
import { clientOptions, positiveWholeNumber, wholeNumber } from './options.js'
import { errorLine, json, line, outputOwner, table } from './output.js'
import type { ClientTarget } from './client.js'
import type { SimFlags } from './sim-command.js'

/** Errors the user can act on print one line; anything else is a bug and says so. */
const USER_ERRORS = new Set(['InvalidConfigError', 'InvalidScenarioError', 'UnsupportedFaultError', 'DataDirInUseError', 'DataDirError', 'AddressInUseError', 'NodeNotRunningError', 'MalformedNodeFileError', 'ApiRequestError', 'McpServerError'])

/** The `--json` name of a refusal the CLI makes itself: as a batch's unanswered task says it, or the class's in the API's style. */
function cliErrorName (className: string): string {
  if (className === 'NodeNotRunningError') return 'NODE_UNREACHABLE'
  return className.replace(/Error$/, '').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
}

export function buildProgram (): Command {
  const program = new Command('agentmesh')
    .description('a peer-to-peer mesh of AI agents')
    .version(VERSION)
    .showSuggestionAfterError()
    // before any subcommand exists, so they inherit it: usage errors come back here as exceptions
    .exitOverride()
    // every client command may name a token file; read once, before the command talks to the API
    .hook('preAction', async (_program, action) => {
      const file = action.opts().apiTokenFile
      if (typeof file === 'string' && action.name() !== 'node') await useApiToken(file)
    })

  addNodeCommand(program)

  program.command('keygen')
    .description('write a new swarm key for a private mesh')
    .requiredOption('--swarm-key <file>', 'where to write the key (never overwrites)')
    .action(async (opts: { swarmKey: string }) => {
      try {
        await writeSwarmKey(opts.swarmKey)
      } catch (err: any) {
        throw Object.assign(new Error(err.code === 'EEXIST' ? `${opts.swarmKey} exists; not overwriting a swarm key` : `cannot write ${opts.swarmKey}: ${err.code ?? err.message}`), { name: 'InvalidConfigError' })
      }
      line(`wrote swarm key ${opts.swarmKey}`)
    })

  clientOptions(program.command('status'))
    .description('health and identity of a node')
    .action(async (opts: ClientTarget & { json?: boolean }) => {
      const url = await resolveApiUrl(opts)
      const [health, node] = await Promise.all([apiRequest(url, 'GET', '/v1/health'), apiRequest(url, 'GET', '/v1/node')])
      if (opts.json === true) return json({ health, node })
      line(`peer id: ${health.peerId}`)
      line(`ok: ${health.ok}  version: ${health.version}  uptime: ${Math.round(health.uptimeMs / 1000)} s`)
      if (typeof health.problem === 'string') line(`problem: ${health.problem}`)
      line(`mesh: ${node.mesh}`)
      for (const addr of node.addrs) line(`address: ${addr}`)
      line(`store: ${Object.entries(node.store).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`)
    })

  clientOptions(program.command('peers'))
    .description('peers a node is connected to')
    .action(async (opts: ClientTarget & { json?: boolean }) => {
      const { peers } = await apiRequest(await resolveApiUrl(opts), 'GET', '/v1/peers')
      if (opts.json === true) return json({ peers })
      table(['PEER', 'ADDRESS'], peers.map((p: { peerId: string, addrs: string[] }) => [p.peerId, p.addrs.join(' ')]))
    })

  clientOptions(program.command('capabilities'))
    .description('what the mesh can run now: each live capability, the peers offering it and their free slots')
    .action(async (opts: ClientTarget & { json?: boolean }) => {
      const { capabilities } = await apiRequest(await resolveApiUrl(opts), 'GET', '/v1/capabilities')
      if (opts.json === true) return json({ capabilities })
      table(['CAPABILITY', 'PEERS', 'FREE SLOTS', 'DESCRIPTION'], capabilities.map((c: { name: string, description?: string, peers: Array<{ freeSlots: number }> }) => [
        c.name, String(c.peers.length), String(c.peers.reduce((n, p) => n + p.freeSlots, 0)), c.description ?? ''
      ]))
    })

  addTaskCommands(program)
  addWatchCommand(program)
  addTraceCommand(program)
  addMcpCommand(program)
  addMemoryCommand(program)
  addSignalCommands(program)

  program.command('sim')
    .description('run a local multi-node mesh under a workload and a fault scenario, and report')
    .option('--nodes <n>', 'how many nodes (default: the scenario\'s, else 5)', positiveWholeNumber('--nodes'))
    .option('--tasks <m>', 'how many tasks (default: the scenario\'s, else 100)', positiveWholeNumber('--tasks'))
    .option('--workload <name>', 'echo, sleep, mapreduce or mixed')
    .option('--rate <r>', 'tasks submitted per second', (v: string) => {
      const n = Number(v)
      if (!(n > 0)) throw Object.assign(new Error(`--rate takes a positive number, got "${v}"`), { name: 'InvalidConfigError' })
      return n
    })
    .option('--scenario <name|file>', 'steady, crash, pause, partition, latency, churn, flood, demo, or a JSON file (default steady)')
    .option('--seed <s>', 'the same seed gives the same workload and fault schedule (default 1)', wholeNumber('--seed'))
    .option('--transport <t>', 'memory or tcp, for nodes in one process (default memory)')
    .option('--processes', 'real daemons as child processes instead of nodes in one process')
    .option('--json <file>', 'write the report as JSON')
    .option('--report <file>', 'write the report as one self-contained HTML file with charts')
    // the simulator (and all it runs) is loaded only by the command that uses it
    .action(async (opts: SimFlags) => { await (await import('./sim-command.js')).runSimCommand(opts) })
  program.addOption(new Option('--debug', 'print stack traces of unexpected errors').hideHelp())
  addExamples(program)
  return program
}

export async function main (argv: string[]): Promise<void> {
  // a reader that stops early (`agentmesh tasks | head`) closes the pipe: a listing stops quietly,
  // keeping the exit code it set (submit --wait's 1 or 3); a daemon or a simulation goes on
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    if (!outputOwner.keepGoing) process.exit()
  })
  // a closed stderr (a warning, a reconnect line, libp2p's DEBUG output) never crashes anything
  process.stderr.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
  })
  const program = buildProgram()
  try {
    await program.parseAsync(argv)
  } catch (err: any) {
    if (err instanceof CommanderError) {
      // commander has already printed its one line; help and version exit 0
      process.exitCode = err.exitCode === 0 ? 0 : 2
      return
    }
    if (USER_ERRORS.has(err?.name)) {
      // the raw answer, as --json prints every other: its error's name is what a program tells apart;
      // a refusal of the CLI's own (no node answered, a bad id) in the same shape (sim's --json is a file)
      if (argv.includes('--json') && argv[2] !== 'sim') json(err.name === 'ApiRequestError' && err.body !== undefined ? err.body : { error: { name: cliErrorName(err.name), message: err.message } })
      errorLine(err.message)
      process.exitCode = 1
      return
    }
    errorLine(`unexpected error: ${err?.message ?? String(err)}${argv.includes('--debug') ? `\n${err?.stack}` : ''}`)
    process.exitCode = 1
  }
}
