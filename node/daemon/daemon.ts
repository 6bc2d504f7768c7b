import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readApiToken } from '../api/auth.js'
import { ApiServer, checkApiAddress, checkApiToken } from '../api/server.js'
import { createAgentNode } from '../create-node.js'
import { meshLogger } from '../mesh-logger.js'
import { DataDirError, DataDirInUseError } from '../errors.js'
import { readSwarmKey } from '../swarm-key.js'
import { resolveLlmConfig, resolveLlmEndpoint } from '../llm/config.js'
import { openaiEmbedder } from '../memory/embedder.js'
import type { Embed } from '../memory/memory-layer.js'
import { resolveAgents } from './agents.js'
import { checkConcurrency } from './agent-options.js'
import { exportTraces } from '../tracing.js'
import { bootstrapWarner, createOperatorLog, watchNode } from './oplog.js'
import type { OperatorLog } from './oplog.js'
import { splitHostPort } from './config.js'
import type { DaemonConfig } from './config.js'
import type { AgentNode, AgentNodeInit } from '../create-node.js'
import { NODE_FILE, readNodeFile } from './node-file.js'
import type { NodeFile } from './node-file.js'

// kept here too: the CLI's client reads them from node-file.js, which loads no libp2p
export { NODE_FILE, readNodeFile } from './node-file.js'
export type { NodeFile } from './node-file.js'

export interface Daemon {
  /** the model the LLM agents use, if one is configured */
  llm?: { model: string, models?: string[], baseURL?: string }
  node: AgentNode
  api: ApiServer
  nodeFile: NodeFile
  /** the operator log (stderr) */
  log: OperatorLog
  stop: () => Promise<void>
}

/**
 * Starts a node and its control API from a resolved config, then writes node.json. Anything that
 * fails part-way undoes what was started, so a refused start harms nothing.
 */
export async function startDaemon (config: DaemonConfig, extra: Partial<AgentNodeInit> = {}): Promise<Daemon> {
  const swarmKey = config.swarmKey === undefined ? undefined : await readSwarmKey(config.swarmKey)
  const resolvedLlm = await resolveLlmConfig({ llmBaseUrl: config.llmBaseUrl, llmModel: config.llmModel, llmApiKeyFile: config.llmApiKeyFile })
  const { embeddingsTimeoutMs, ...modelCalls } = config.llm ?? {}
  const llm = resolvedLlm === undefined ? undefined : { ...resolvedLlm, ...modelCalls }
  const embed = await resolveEmbedder(config, embeddingsTimeoutMs)
  const agents = await resolveAgents(config.agents, config.agentsModule, llm, embed)
  const token = await readApiToken(config.apiTokenFile)
  const apiAddress = splitHostPort(config.api)
  // before the store is opened: a refused start made a new node key (a new peer) on the way
  checkApiToken(apiAddress.host, token)
  await checkApiAddress(apiAddress.host, apiAddress.port).catch(async (err: Error) => { throw await ownerOf(config.data) ?? err })
  const log = createOperatorLog(config.logLevel, config.logFormat)
  // MCP servers last among the checks: they start processes, which a refused start must not leave behind
  const mcp = config.mcpServers === undefined
    ? undefined
    // the MCP SDK is loaded only by a node that has MCP servers to reach
    : await (await import('../mcp/clients.js')).connectMcpServers(config.mcpServers, { ...config.mcpClients, logger: meshLogger(extra.logPrefix) })
  let node: AgentNode
  try {
    const allAgents = [...agents, ...(mcp?.agents ?? [])]
    checkConcurrency(allAgents, config.concurrency)
    node = await createAgentNode({
      dataDir: config.data,
      listen: config.listen,
      bootstrap: config.bootstrap,
      mesh: config.mesh,
      swarmKey,
      ...(config.gossip === undefined ? {} : { gossip: config.gossip }),
      ...(config.pingIntervalMs === undefined ? {} : { pingIntervalMs: config.pingIntervalMs }),
      ...config.network,
      onBootstrapUnreachable: bootstrapWarner(log),
      onCorruptRecord: corruptRecordLog(log),
      ...extra,
      tasks: extra.tasks === false ? false : { ...config.tasks, ...extra.tasks, agents: allAgents, concurrency: config.concurrency, ...(embed === undefined ? {} : { embed }) }
    })
  } catch (err: any) {
    await mcp?.close()
    if (err?.name === 'DataDirInUseError') throw await ownerOf(config.data, true) ?? err
    throw err
  }
  let api: ApiServer
  try {
    api = await ApiServer.listen(node, {
      ...apiAddress,
      ...config.http,
      doorOptions: config.doors,
      token,
      onInternalError: (err: any, what) => { log.error({ event: 'api-error', what, error: String(err?.message ?? err) }, `${what} failed (a bug: please report it): ${String(err?.message ?? err)}`) }
    })
  } catch (err) {
    await node.stop()
    await mcp?.close()
    throw err
  }
  const unwatch = watchNode(log, node)
  // traces are an aid: a collector set-up that fails is said, and the node runs on without it
  const stopTraces = await exportTraces(process.env, node.peerId.toString()).catch((err: Error) => { log.warn({ event: 'traces-off', error: err.message }, `traces not exported: ${err.message}`); return undefined })
  if (stopTraces !== undefined) log.info({ event: 'traces-exported', endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'exporting traces over OTLP')
  const nodeFile: NodeFile = { peerId: node.peerId.toString(), addrs: node.addrs(), api: api.url, pid: process.pid }
  const path = join(config.data, NODE_FILE)
  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      unwatch()
      try {
        await rm(path, { force: true })
        await api.close()
        await node.stop()
        await mcp?.close()
      } finally {
        await stopTraces?.()
      }
    })()
    return stopping
  }
  try {
    // write then rename: a reader never sees half a file
    await writeFile(`${path}.tmp`, JSON.stringify(nodeFile, null, 2))
    await rename(`${path}.tmp`, path)
  } catch (err: any) {
    await stop().catch(() => {})
    await rm(`${path}.tmp`, { force: true }).catch(() => {})
    throw new DataDirError(`cannot write ${path}: ${String(err?.message ?? err)}`, { cause: err })
  }
  return { node, api, nodeFile, stop, log, llm: llm === undefined ? undefined : { model: llm.model, models: llm.models, baseURL: llm.baseURL } }
}

/** Vector memory's embedder: the embeddings model at the LLM's endpoint and key, if one is named. */
async function resolveEmbedder (config: DaemonConfig, timeoutMs: number | undefined): Promise<Embed | undefined> {
  if (config.embeddingsModel === undefined) return undefined
  const endpoint = await resolveLlmEndpoint({ llmBaseUrl: config.llmBaseUrl, llmApiKeyFile: config.llmApiKeyFile })
  return openaiEmbedder({ model: config.embeddingsModel, ...endpoint, timeoutMs })
}

/** One operator-log line per corrupt record: a record is read again on every request that names it. */
function corruptRecordLog (log: OperatorLog): (message: string) => void {
  const told = new Set<string>()
  return message => {
    if (told.has(message) || told.size >= 10_000) return
    told.add(message)
    log.warn({ event: 'corrupt-record', record: message }, `skipped a corrupt record in the store: ${message}`)
  }
}

/**
 * The error naming the node that runs on `dataDir` (its pid from node.json), when one does; `locked`:
 * the store's lock says one does, with or without a node.json. A second start on a running node's
 * dir and port met the taken port first and named that, not the node.
 */
async function ownerOf (dataDir: string, locked = false): Promise<DataDirInUseError | undefined> {
  const owner = await readNodeFile(dataDir).catch(() => undefined)
  const running = owner !== undefined && isRunning(owner.pid)
  if (!running && !locked) return undefined
  return new DataDirInUseError(`data dir ${dataDir} is in use by another agentmesh node${running ? ` (pid ${owner.pid})` : ''}`)
}

function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    // EPERM: it runs, as another user
    return err?.code === 'EPERM'
  }
}
