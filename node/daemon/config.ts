import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { withoutBom } from '../text-files.js'
import { DEFAULT_MESH, MESH_NAME } from '../mesh-name.js'
import { InvalidConfigError } from '../errors.js'
import { envValue } from '../env.js'
import { mcpServersFromFlags, mcpServersSchema } from '../mcp/config.js'
import { contradictoryTaskOptions, taskOptionsSchema } from '../tasks/options.js'
import { gossipTuningSchema } from '../gossip-tuning.js'
import { networkFields, networkOptionsSchema } from '../network-options.js'
import { concurrencySchema, llmOptionsSchema, mcpClientOptionsSchema } from './agent-options.js'
import { DOOR_FIELDS, doorOptionsSchema } from '../api/door-options.js'
import { LOG_FORMATS, LOG_LEVELS } from './oplog.js'
import { DEFAULT_CLOSE_GRACE_MS } from '../api/graceful-close.js'
import type { TaskLayerOptions } from '../tasks/options.js'

export const DEFAULT_API = '127.0.0.1:7070'
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']
export const DEFAULT_DATA_DIR = join(homedir(), '.agentmesh')
export const DEFAULT_STOP_TIMEOUT_MS = 5_000
/** what a stop needs after the API's grace: the task layer, libp2p and the store close within it */
const STOP_AFTER_GRACE_MS = 1_000

const multiaddrString = z.string().refine(s => {
  try { multiaddr(s); return s.startsWith('/') } catch { return false }
}, { error: iss => `not a valid multiaddr: "${String(iss.input)}"`, abort: true })

/**
 * Ports the fetch standard blocks: fetch (this CLI's client, the OpenAI and MCP SDKs, browsers)
 * refuses to connect to them, so an API listening on one is out of reach of every client.
 */
export const FETCH_BLOCKED_PORTS: ReadonlySet<number> = new Set([1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080])

// abort: a value that is not HOST:PORT at all gets that one message, not also the port's
const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { message: 'expected HOST:PORT, e.g. 127.0.0.1:7070', abort: true })
  .refine(s => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, { message: 'port must be 0-65535', abort: true })
  .refine(s => !FETCH_BLOCKED_PORTS.has(Number(s.slice(s.lastIndexOf(':') + 1))), { error: iss => `port ${String(iss.input).slice(String(iss.input).lastIndexOf(':') + 1)} is one that fetch refuses to connect to (the CLI, the OpenAI and MCP clients, browsers): pick another, e.g. 7070` })

/** A path given as nothing: refused by name, where reading it said `cannot read : ENOENT` */
const pathString = z.string().min(1, 'names no file')

/** A peer to join through must name its peer id: without it the dial cannot be secured, and the node would never join. */
const bootstrapAddr = multiaddrString.refine(s => /\/p2p\/[A-Za-z0-9]+$/.test(s), { error: iss => `bootstrap address "${String(iss.input)}" has no /p2p/<peer id> at its end: copy the full address a node prints as "listening:"`, abort: true })
  .refine(s => { try { peerIdFromString(s.slice(s.lastIndexOf('/p2p/') + 5)); return true } catch { return false } }, { error: iss => `bootstrap address "${String(iss.input)}" ends in a /p2p/ part that is not a peer id: copy the full address a node prints as "listening:"` })

/** The control API's connection timers and its long poll's cap (node/api/server.ts, ApiServerInit, has each with its default). */
const httpFields = z.object({
  /** @default 72_000 */
  keepAliveMs: z.number().int().min(1_000).max(3_600_000).optional(),
  /** @default 30_000 */
  requestTimeoutMs: z.number().int().min(1_000).max(3_600_000).optional(),
  /** the longest a `?wait=` on a submit or a result waits, whatever the client asks. @default 300_000 */
  maxWaitMs: z.number().int().min(1_000).max(3_600_000).optional(),
  /** at most stopTimeoutMs - 1_000: the daemon's whole stop is cut off at stopTimeoutMs, before the store is closed. @default 3_000 */
  closeGraceMs: z.number().int().min(0).max(600_000).optional(),
  /**
   * the deepest nesting of a request body's arrays and objects (the body itself is level 1); deeper
   * is 400, before parsing. At least 16: the doors' own bodies nest 5 to 8 deep before the user's
   * data (an A2A message's data part, a tool's JSON schema). @default 100
   */
  maxJsonDepth: z.number().int().min(16).max(1_000).optional(),
  /** an event stream's client this many bytes behind (it stopped reading) is cut off. @default 1_048_576 (1 MiB) */
  sseMaxBufferedBytes: z.number().int().min(65_536).max(268_435_456).optional()
}).strict()

/** Every daemon option, from whichever source, each checked alone (a file's part is checked with it). */
const daemonConfigFields = z.object({
  data: z.string().min(1, 'names no directory'),
  /** addresses to listen on; one naming a peer (`/p2p/...`) is refused: the node is always itself, whatever it names */
  listen: z.array(multiaddrString.refine(s => !multiaddr(s).getComponents().some(c => c.name === 'p2p'), { error: iss => `listen address "${String(iss.input)}" names a peer (/p2p/...): a node listens as itself; drop that part` })).min(1),
  bootstrap: z.array(bootstrapAddr),
  api: hostPort,
  mesh: z.string().regex(MESH_NAME, 'mesh name: letters, digits, . _ - (up to 64)'),
  swarmKey: pathString.optional(),
  /** built-in agents to run; ['none'] for none (an empty list, e.g. AGENTMESH_AGENTS=",", is refused: it says nothing) */
  agents: z.array(z.string().min(1)).min(1, 'names no agent: give agent names, or "none" to run none').optional(),
  agentsModule: pathString.optional(),
  llmBaseUrl: z.string().min(1).optional(),
  /** one model, a comma list, or a list of either: each is served as `llm.chat.<model>`, the first is the default */
  llmModel: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  llmApiKeyFile: pathString.optional(),
  /** the model that embeds vector memory's texts, at the LLM's base URL and key; none: callers give vectors */
  embeddingsModel: z.string().trim().min(1, 'names no model').max(256).optional(),
  /** a file holding the API's bearer token (else AGENTMESH_API_TOKEN); required off loopback */
  apiTokenFile: pathString.optional(),
  /** MCP servers whose tools this node offers as `mcp.NAME.TOOL`: name -> command line, URL, {command, args, env, cwd} or {url, headers} */
  mcpServers: mcpServersSchema.optional(),
  /** how this node reaches its MCP servers (timeouts, calls at once, tools offered); node/daemon/agent-options.ts has each with its default */
  mcpClients: mcpClientOptionsSchema.optional(),
  /** the LLM agents' model calls (timeout, retries, steps, token budget) and the embedder's timeout; node/daemon/agent-options.ts */
  llm: llmOptionsSchema.optional(),
  /** tasks an agent runs at once, by agent name (e.g. {"llm.chat": 8}): overrides the agent's own */
  concurrency: concurrencySchema.optional(),
  /** the operator log's level (stderr); libp2p's own DEBUG logging is apart. @default 'info' */
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** pretty: one readable line per event; json: one JSON object per line. @default 'pretty' */
  logFormat: z.enum(LOG_FORMATS).default('pretty'),
  /** gossipsub's heartbeat, mesh degree, flood publishing and IDONTWANT threshold; node/libp2p-options.ts has each with its default */
  gossip: gossipTuningSchema.optional(),
  /** how often each connection is pinged, to close one whose peer went silent (createAgentNode's pingIntervalMs). @default 30_000 */
  pingIntervalMs: z.number().int().min(1_000).max(3_600_000).optional(),
  /** connections, remembered peers, bootstrap retries and DHT lookups; node/network-options.ts has each with its default */
  network: networkOptionsSchema.optional(),
  /** how long `agentmesh node` waits for a clean stop after a signal before it exits anyway. @default 5_000 */
  stopTimeoutMs: z.number().int().min(2_000).max(600_000).optional(),
  /** the control API's connection timers; node/api/server.ts (ApiServerInit) has each with its default */
  http: httpFields.optional(),
  /** the protocol doors' timers (OpenAI, MCP, A2A); node/api/door-options.ts has each with its default */
  doors: doorOptionsSchema.optional(),
  /** the task layer's timers and limits; node/tasks/options.ts has each with its default */
  tasks: taskOptionsSchema.prefault({})
}, {
  error: iss => iss.code === 'unrecognized_keys' ? iss.keys.map(misplacedKey).join('; ') : undefined
}).strict()

/** Every daemon option, from whichever source. One schema checks them all, and how they fit together. */
export const daemonConfigSchema = daemonConfigFields.superRefine((c, ctx) => {
  const stop = c.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS
  const grace = c.http?.closeGraceMs
  if ((grace ?? DEFAULT_CLOSE_GRACE_MS) <= stop - STOP_AFTER_GRACE_MS) return
  // named by the key that was given: a grace left at its default is the stop timeout's doing
  if (grace === undefined) {
    ctx.addIssue({ code: 'custom', path: ['stopTimeoutMs'], message: `${stop} leaves ${stop - STOP_AFTER_GRACE_MS} ms for http.closeGraceMs (${DEFAULT_CLOSE_GRACE_MS} by default) and a second for the rest of the stop: give http.closeGraceMs at most ${stop - STOP_AFTER_GRACE_MS}, or stopTimeoutMs at least ${DEFAULT_CLOSE_GRACE_MS + STOP_AFTER_GRACE_MS}` })
  } else {
    ctx.addIssue({ code: 'custom', path: ['http', 'closeGraceMs'], message: `${grace}, at most ${stop - STOP_AFTER_GRACE_MS}: a stop that takes over stopTimeoutMs (${stop} ms) is cut off, before the store is closed; raise stopTimeoutMs or lower this` })
  }
})

/** The sections whose keys a config file may put at its top level by mistake, and the shapes of their keys. */
const SECTIONS: Array<[string, Record<string, unknown>]> = [
  ['tasks', taskOptionsSchema.shape],
  ['network', networkFields.shape],
  ['http', httpFields.shape],
  ['gossip', gossipTuningSchema.shape],
  ['llm', llmOptionsSchema.shape],
  ['mcpClients', mcpClientOptionsSchema.shape],
  ['doors', doorOptionsSchema.shape],
  ...Object.entries(DOOR_FIELDS).map(([door, fields]): [string, Record<string, unknown>] => [`doors.${door}`, fields.shape])
]

/** What a key of a section is called, where "an <section> option" does not read well. */
const SECTION_WORDS: Record<string, string> = { tasks: 'a task option', network: 'a network option', gossip: 'a gossip option', doors: 'a door' }

/** A key the config file's top level does not take, and where it belongs if it is a section's (`{"leaseMs": ...}` for `{"tasks": {"leaseMs": ...}}`). */
function misplacedKey (key: string): string {
  const sections = SECTIONS.filter(([, shape]) => Object.hasOwn(shape, key)).map(([section]) => section)
  if (sections.length === 0) return `Unrecognized key: "${key}"`
  const under = (section: string): string => `"${section}" (${section.split('.').reduceRight((inner, part) => `{"${part}": ${inner}}`, `{"${key}": ...}`)})`
  if (sections.length > 1) return `"${key}" is an option of several sections: put it under ${sections.map(under).join(' or ')}`
  const section = sections[0] as string
  const what = SECTION_WORDS[section] ?? (section.startsWith('doors.') ? `an option of the ${section.slice(6)} door` : `an ${section} option`)
  return `"${key}" is ${what}: put it under ${under(section)}`
}

export type DaemonConfig = z.infer<typeof daemonConfigSchema>
/** What one source (the file, the environment, the flags) says; `tasks` is merged key by key. */
type PartialConfig = Omit<Partial<DaemonConfig>, 'tasks'> & { tasks?: Partial<TaskLayerOptions> }

/** A whole number written in digits only (no 1e4, no 0x10, no sign), or undefined. */
export function wholeNumberOf (value: string): number | undefined {
  const n = Number(value)
  return /^[0-9]+$/.test(value.trim()) && Number.isSafeInteger(n) ? n : undefined
}

/** Parses a positive whole number given as text (a flag or a variable), or says which one is wrong. */
export function parsePositiveWholeNumber (name: string, value: string): number {
  const n = wholeNumberOf(value)
  if (n === undefined || n < 1) throw new InvalidConfigError(`${name} takes a positive whole number, got "${value}"`)
  return n
}

const ENV: Record<string, keyof DaemonConfig> = {
  AGENTMESH_DATA: 'data',
  AGENTMESH_LISTEN: 'listen',
  AGENTMESH_BOOTSTRAP: 'bootstrap',
  AGENTMESH_API: 'api',
  AGENTMESH_MESH: 'mesh',
  AGENTMESH_SWARM_KEY: 'swarmKey',
  AGENTMESH_AGENTS: 'agents',
  AGENTMESH_AGENTS_MODULE: 'agentsModule',
  AGENTMESH_LOG_LEVEL: 'logLevel',
  AGENTMESH_LOG_FORMAT: 'logFormat',
  AGENTMESH_EMBEDDINGS_MODEL: 'embeddingsModel'
}
const ENV_NAMES = new Map<string, string>(Object.entries(ENV).map(([name, key]) => [key, name]))
/** Task options that also have a variable (and a flag of `agentmesh node`: leaseMs is --lease-ms). */
const TASK_ENV: Record<string, keyof TaskLayerOptions> = {
  AGENTMESH_LEASE_MS: 'leaseMs'
}
const LIST_KEYS = new Set<keyof DaemonConfig>(['listen', 'bootstrap', 'agents'])

/** AGENTMESH_* variables; lists are comma-separated, task options positive whole numbers. */
export function configFromEnv (env: NodeJS.ProcessEnv): PartialConfig {
  const out: Record<string, unknown> = {}
  for (const [name, key] of Object.entries(ENV)) {
    const value = envValue(env, name)
    if (value === undefined) continue
    out[key] = LIST_KEYS.has(key) ? value.split(',').map(s => s.trim()).filter(Boolean) : value
    // the others' schemas refuse an empty list; none is a valid bootstrap list, so one that came out empty was taken as none
    if (key === 'bootstrap' && (out[key] as string[]).length === 0) throw new InvalidConfigError(`${name} names no address: give one, or unset it`)
  }
  const tasks: Record<string, number> = {}
  for (const [name, key] of Object.entries(TASK_ENV)) {
    const value = envValue(env, name)
    if (value !== undefined) tasks[key] = parsePositiveWholeNumber(name, value)
  }
  if (Object.keys(tasks).length > 0) out.tasks = tasks
  return out as PartialConfig
}

export async function configFromFile (path: string): Promise<PartialConfig> {
  let text: string
  try {
    text = withoutBom(await readFile(path, 'utf8'))
  } catch (err: any) {
    throw new InvalidConfigError(`cannot read config file ${path}: ${err.code ?? err.message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err: any) {
    throw new InvalidConfigError(`config file ${path} is not valid JSON: ${err.message}`)
  }
  const parsed = daemonConfigFields.partial().safeParse(json)
  if (!parsed.success) throw new InvalidConfigError(`config file ${path}: ${describe(parsed.error)}`)
  return parsed.data
}

/**
 * Defaults < config file < environment < flags. Relative paths in the config file are resolved
 * against the working directory, like those on the command line.
 */
export type DaemonFlags = Omit<PartialConfig, 'agents' | 'tasks' | 'logLevel' | 'logFormat'> & { logLevel?: string, logFormat?: string, config?: string, agents?: string | string[], leaseMs?: number, /** `--mcp-server NAME=COMMAND|URL`, repeatable */ mcpServer?: string[] }

export async function resolveDaemonConfig (rawFlags: DaemonFlags, env: NodeJS.ProcessEnv = process.env): Promise<DaemonConfig> {
  // --agents is one comma-separated flag on the command line, a list in the config file
  const flags = { ...rawFlags, agents: typeof rawFlags.agents === 'string' ? rawFlags.agents.split(',').map(a => a.trim()).filter(Boolean) : rawFlags.agents }
  if (flags.config === '') throw new InvalidConfigError('--config names no file')
  const configPath = flags.config ?? envValue(env, 'AGENTMESH_CONFIG')
  const fromFile = configPath === undefined ? {} : await configFromFile(configPath)
  const { config: _ignored, leaseMs, mcpServer, ...rest } = flags
  // log level and format are checked by the schema with the rest
  const fromFlags = { ...rest, tasks: { leaseMs }, ...(mcpServer === undefined ? {} : { mcpServers: mcpServersFromFlags(mcpServer) }) }
  // an empty key variable (a compose file's ${KEY} with KEY unset), with no key from a flag or the
  // file, would start a private mesh's node open to all
  if (env.AGENTMESH_SWARM_KEY === '' && flags.swarmKey === undefined && fromFile.swarmKey === undefined) throw new InvalidConfigError('AGENTMESH_SWARM_KEY is set but empty: name the swarm key file, or unset it (an empty one would start this node outside its private mesh, open to any peer)')
  const fromEnv = configFromEnv(env)
  const layers = [fromFile, fromEnv, fromFlags as PartialConfig]
  const merged = {
    data: DEFAULT_DATA_DIR,
    listen: DEFAULT_LISTEN,
    bootstrap: [],
    api: DEFAULT_API,
    mesh: DEFAULT_MESH,
    ...Object.assign({}, ...layers.map(dropUndefined)),
    // one option from the file, another from a flag: both apply
    tasks: Object.assign({}, ...layers.map(layer => dropUndefined(layer.tasks ?? {}))),
    // by name: a flag adds a server to those of the file, or replaces the one of the same name
    mcpServers: layers.some(layer => layer.mcpServers !== undefined) ? Object.assign({}, ...layers.map(layer => layer.mcpServers ?? {})) : undefined
  }
  const parsed = daemonConfigSchema.safeParse(merged)
  // a value a flag did not override and a variable gave is named by that variable
  const variableOf = (key: string): string | undefined => (fromFlags as Record<string, unknown>)[key] === undefined && (fromEnv as Record<string, unknown>)[key] !== undefined ? ENV_NAMES.get(key) : undefined
  if (!parsed.success) throw new InvalidConfigError(describe(parsed.error, variableOf))
  const config = parsed.data
  const contradictions = contradictoryTaskOptions(config.tasks)
  if (contradictions.length > 0) throw new InvalidConfigError(contradictions.map(c => `tasks.${c}`).join('; '))
  return {
    ...config,
    data: resolve(config.data),
    swarmKey: config.swarmKey === undefined ? undefined : resolve(config.swarmKey),
    agentsModule: config.agentsModule === undefined ? undefined : resolve(config.agentsModule),
    apiTokenFile: config.apiTokenFile === undefined ? undefined : resolve(config.apiTokenFile)
  }
}

/** A schema's issues in one line; `sourceOf` names where a top-level key's value came from (an environment variable), when not from a flag or the file. */
export function describe (error: z.ZodError, sourceOf: (key: string) => string | undefined = () => undefined): string {
  return error.issues.map(i => {
    if (i.path.length === 0) return i.message
    const source = sourceOf(String(i.path[0]))
    return `${source === undefined ? '' : `${source}: `}${i.path.join('.')}: ${i.message}`
  }).join('; ')
}

function dropUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

export function splitHostPort (api: string): { host: string, port: number } {
  const i = api.lastIndexOf(':')
  return { host: api.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(api.slice(i + 1)) }
}
