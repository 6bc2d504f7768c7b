import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { readApiToken } from '../../node/api/auth.js'
import { addNodeCommand } from '../../node/cli/node-command.js'
import { timerMsFlag, wholeNumber } from '../../node/cli/options.js'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { startDaemon } from '../../node/daemon/daemon.js'
import { createAgentNode } from '../../node/create-node.js'
import { resolveLlmConfig } from '../../node/llm/config.js'
import { resolveTaskOptions, TASK_OPTION_DEFAULTS } from '../../node/tasks/options.js'
import { runCli } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { expectFileRefused, startBare } from '../helpers/config-files.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { NodeFlags } from '../../node/cli/node-command.js'
import type { Daemon } from '../../node/daemon/daemon.js'

/** Every task option the README documents, with its default: written out, so a dropped or changed one fails. */
const DOCUMENTED_DEFAULTS = {
  replicationFactor: 3,
  ownPlacementTries: 1,
  leaseMs: 10_000,
  renewFraction: 1 / 3,
  defaultWaitMs: 86_400_000,
  memoryHnswAbove: 250_000,
  remoteEmbedWaitMs: 120_000,
  stopGiveBackMs: 1_000,
  stopClaimGraceMs: 2_000,
  subtaskResultWaitMs: 50_000,
  presenceExpiryIntervals: 3,
  rpcMaxConcurrentHandlers: 32,
  rpcMaxConsecutiveTimeouts: 2,
  recentFinished: 4_096,
  recentFinishedBytes: 33_554_432,
  voteSignBatchMax: 1,
  resultRepairsPerRound: 64,
  backoffBaseMs: 1_000,
  backoffCapMs: 60_000,
  defaultMaxAttempts: 3,
  defaultTimeoutMs: 60_000,
  defaultDeadlineMs: 86_400_000,
  clockSkewToleranceMs: 30_000,
  maxInputBytes: 1_048_576,
  maxResultBytes: 1_048_576,
  maxInlineResultBytes: 16_384,
  presenceIntervalMs: 5_000,
  presenceEarlyGapMs: 1_000,
  claimStaggerMs: 150,
  claimRanks: 3,
  claimRetryBaseMs: 250,
  keepRanks: 8,
  claimLagLimitMs: 1_000,
  lagSampleMs: 250,
  pullIntervalMs: 2_000,
  pullIntervalCapMs: 16_000,
  pullAgainMs: 50,
  pullPeers: 2,
  pullMinAgeMs: 2_000,
  sweepIntervalMs: 1_000,
  reannounceBaseMs: 2_000,
  reannounceCapMs: 60_000,
  reannounceOffers: 2,
  deadCopyRefreshCapMs: 3_600_000,
  rpcTimeoutMs: 5_000,
  waitPollBaseMs: 1_000,
  waitPollCapMs: 8_000,
  resultFollowMs: 50,
  remoteWaitersLimit: 10_000,
  recoveryConcurrency: 16,
  backupAfterMs: 120_000,
  deadlineBackupMs: 15_000,
  antiEntropyIntervalMs: 30_000,
  antiEntropyMinAgeMs: 10_000,
  retentionMs: 604_800_000,
  membershipWindowMs: 600_000,
  offerQueueLimit: 256,
  claimAheadPerSlot: 0,
  prerunMaxMs: 1_000,
  prerunVoteWaitMs: 100,
  askAgainMs: 250,
  maxPendingReports: 64,
  abortGraceMs: 5_000,
  maxUnfinishedTasks: 50_000,
  maxSubmitsInFlight: 256,
  retryAfterMs: 1_000,
  handoffTimeoutMs: 5_000,
  handoffSuspectMs: 1_500,
  silentPeerMs: 1_500,
  placementMoveAfterMs: 120_000,
  progressTasks: 1_000,
  progressEventsPerTask: 256,
  eventsPollMs: 1_000,
  watchReorderMs: 250,
  progressQueueLimit: 4_096,
  syncWrites: true
}

/** `agentmesh node ARGS` as the CLI parses them, with the action replaced so nothing starts. */
async function parseNodeFlags (args: string[]): Promise<NodeFlags> {
  const program = new Command('agentmesh').exitOverride()
  let flags: NodeFlags | undefined
  addNodeCommand(program).action((opts: NodeFlags) => { flags = opts })
  await program.parseAsync(['node', ...args], { from: 'user' })
  if (flags === undefined) throw new Error('the node action did not run')
  return flags
}

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

  it('takes the operator log\'s level and format from flags and AGENTMESH_LOG_*, info and pretty by default', async () => {
    expect(await resolveDaemonConfig({}, {})).toMatchObject({ logLevel: 'info', logFormat: 'pretty' })
    expect(await resolveDaemonConfig({}, { AGENTMESH_LOG_LEVEL: 'warn', AGENTMESH_LOG_FORMAT: 'json' })).toMatchObject({ logLevel: 'warn', logFormat: 'json' })
    expect(await resolveDaemonConfig({ logLevel: 'debug' }, { AGENTMESH_LOG_LEVEL: 'warn' })).toMatchObject({ logLevel: 'debug' })
  })

  it('splits list variables on commas', async () => {
    const config = await resolveDaemonConfig({}, { AGENTMESH_LISTEN: '/ip4/127.0.0.1/tcp/0, /memory/x' })
    expect(config.listen).toEqual(['/ip4/127.0.0.1/tcp/0', '/memory/x'])
  })

  it('refuses a list of agents that names none (AGENTMESH_AGENTS=",", --agents ","), and takes "none"', async () => {
    for (const [flags, env] of [[{}, { AGENTMESH_AGENTS: ',' }], [{ agents: ',' }, {}], [{ agents: ' , ' }, {}]] as const) {
      const err = await resolveDaemonConfig(flags, env).catch(e => e)
      expect(err.name).toBe('InvalidConfigError')
      expect(err.message).toMatch(/agents.*names no agent.*"none"/)
    }
    const file = join(await tmp(), 'no-agents.json')
    await writeFile(file, JSON.stringify({ agents: [] }))
    await expect(resolveDaemonConfig({ config: file }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/agents.*names no agent/) })
    expect((await resolveDaemonConfig({ agents: 'none' }, {})).agents).toEqual(['none'])
    expect((await resolveDaemonConfig({}, { AGENTMESH_AGENTS: 'echo, ' })).agents).toEqual(['echo'])
  })

  it.each([
    [{ listen: ['/ip4/not-an-ip/tcp/1'] }, /listen/],
    [{ bootstrap: ['hello'] }, /bootstrap/],
    [{ api: 'localhost' }, /HOST:PORT/],
    [{ api: '127.0.0.1:99999' }, /port/],
    [{ mesh: 'bad mesh!' }, /mesh/],
    // without the peer id the dial cannot be secured: the node would never join, and say nothing
    [{ bootstrap: ['/ip4/127.0.0.1/tcp/4001'] }, /no \/p2p\/<peer id>/],
    // a node listens as itself: another peer's id in the address was dropped without a word
    [{ listen: ['/ip4/127.0.0.1/tcp/0/p2p/12D3KooWDVGvU3m2uuifJMcY9YbLY9gafdLLW7jopKLqtfA2jHsf'] }, /listen address .* names a peer \(\/p2p\/\.\.\.\): a node listens as itself/],
    [{ logLevel: 'loud' }, /logLevel/],
    [{ logFormat: 'xml' }, /logFormat/]
  ])('rejects %j with a named error', async (flags, message) => {
    const err = await resolveDaemonConfig(flags, {}).catch(e => e)
    expect(err.name).toBe('InvalidConfigError')
    expect(err.message).toMatch(message)
  })

  it('refuses values that name nothing, where each was taken without a word (the LLM off, no bootstrap, a model or URL that fails on use)', async () => {
    const dir = await tmp()
    const refused = async (run: () => Promise<unknown>, message: RegExp): Promise<void> => {
      await expect(run()).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(message) })
    }
    await refused(async () => await resolveLlmConfig({ llmModel: ',' }, {}), /^--llm-model \(llmModel\) names no model/)
    await refused(async () => await resolveLlmConfig({ llmModel: [' '] }, {}), /^--llm-model \(llmModel\) names no model/)
    await refused(async () => await resolveLlmConfig({}, { AGENTMESH_MODEL: ' , ' }), /^AGENTMESH_MODEL names no model/)
    await refused(async () => await resolveLlmConfig({ llmModel: 'm', llmBaseUrl: 'ftp://x' }, {}), /^--llm-base-url \(llmBaseUrl\) must be an http or https URL/)
    await refused(async () => await resolveLlmConfig({ llmModel: 'm' }, { OPENAI_BASE_URL: 'notaurl' }), /^OPENAI_BASE_URL is not a URL/)
    await writeFile(join(dir, 'key'), '  \n')
    await refused(async () => await resolveLlmConfig({ llmModel: 'm', llmApiKeyFile: join(dir, 'key') }, {}), /holds no key/)
    await refused(async () => await resolveDaemonConfig({}, { AGENTMESH_BOOTSTRAP: ' , ' }), /^AGENTMESH_BOOTSTRAP names no address/)
    await refused(async () => await resolveDaemonConfig({ embeddingsModel: '  ' }, {}), /embeddingsModel: names no model/)
    // the same values, named, still work
    expect((await resolveLlmConfig({ llmModel: 'm', llmBaseUrl: 'http://127.0.0.1:8080/v1' }, {}))?.model).toBe('m')
    expect(await resolveLlmConfig({}, { AGENTMESH_MODEL: '' })).toBeUndefined()
    expect((await resolveLlmConfig({ llmModel: 'm' }, { OPENAI_BASE_URL: '' }))?.baseURL).toBeUndefined()
    // a host named p2p is no peer id
    expect((await resolveDaemonConfig({ listen: ['/dns4/p2p/tcp/0'] }, {})).listen).toEqual(['/dns4/p2p/tcp/0'])
  })

  it('takes several models: a repeated or comma-separated --llm-model, or a list in the config file', async () => {
    const dir = await tmp()
    const flags = await parseNodeFlags(['--llm-model', 'a,b', '--llm-model', 'org/c:7b'])
    expect(flags.llmModel).toEqual(['a,b', 'org/c:7b'])
    expect((await resolveLlmConfig({ llmModel: (await resolveDaemonConfig(flags, {})).llmModel }, {}))?.models).toEqual(['a', 'b', 'org/c:7b'])
    await writeFile(join(dir, 'config.json'), JSON.stringify({ llmModel: ['x', 'y'] }))
    expect((await resolveDaemonConfig({ config: join(dir, 'config.json') }, {})).llmModel).toEqual(['x', 'y'])
    // one string still works
    await writeFile(join(dir, 'one.json'), JSON.stringify({ llmModel: 'x' }))
    expect((await resolveDaemonConfig({ config: join(dir, 'one.json') }, {})).llmModel).toBe('x')
  })

  it('names a bad --api once: not HOST:PORT, or a port out of range', async () => {
    await expect(resolveDaemonConfig({ api: 'notaport' }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: 'api: expected HOST:PORT, e.g. 127.0.0.1:7070' })
    await expect(resolveDaemonConfig({ api: '127.0.0.1:99999' }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: 'api: port must be 0-65535' })
    // the CLI's own client (fetch) cannot reach a port the fetch standard blocks: "bad port" on every command
    await expect(resolveDaemonConfig({ api: '127.0.0.1:6000' }, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: 'api: port 6000 is one that fetch refuses to connect to (the CLI, the OpenAI and MCP clients, browsers): pick another, e.g. 7070' })
  })

  it('names a bad --bootstrap once: not a multiaddr, no /p2p/ part, or one that is not a peer id', async () => {
    const refused = async (addr: string): Promise<string> => (await resolveDaemonConfig({ bootstrap: [addr] }, {}).catch((e: Error) => e) as Error).message
    expect(await refused('garbage')).toBe('bootstrap.0: not a valid multiaddr: "garbage"')
    expect(await refused('/ip4/127.0.0.1/tcp/4001')).toMatch(/^bootstrap\.0: bootstrap address .* has no \/p2p\/<peer id> at its end/)
    expect(await refused('/ip4/127.0.0.1/tcp/4001/p2p/QmNotAPeerIdAtAll')).toMatch(/^bootstrap\.0: (bootstrap address .* ends in a \/p2p\/ part that is not a peer id|not a valid multiaddr)/)
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

describe('a path given as nothing', () => {
  it('is refused by name, not read as a file named "" (an empty variable is unset)', async () => {
    const refused = async (flags: NodeFlags, message: RegExp): Promise<void> => {
      await expect(resolveDaemonConfig(flags, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(message) })
    }
    await refused({ config: '' }, /^--config names no file$/)
    await refused({ swarmKey: '' }, /^swarmKey: names no file$/)
    await refused({ apiTokenFile: '' }, /^apiTokenFile: names no file$/)
    await refused({ data: '' }, /^data: names no directory$/)
    // a private mesh's key variable expanded to nothing would start an open node
    await expect(resolveDaemonConfig({}, { AGENTMESH_SWARM_KEY: '' })).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/^AGENTMESH_SWARM_KEY is set but empty/) })
    // a key given by the flag wins: the empty variable is then nothing to worry about
    expect((await resolveDaemonConfig({ swarmKey: 'k' }, { AGENTMESH_SWARM_KEY: '' })).swarmKey).toMatch(/k$/)
    expect((await resolveDaemonConfig({}, { AGENTMESH_CONFIG: '', AGENTMESH_MESH: 'm' })).mesh).toBe('m')
    await expect(readApiToken('', {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: '--api-token-file names no file' })
  })
})

describe('gossip tuning', () => {
  const tmp = useTmpDirs()

  it('takes gossipsub\'s knobs from the config file, refuses bad ones by name, and runs the daemon with them', async () => {
    const dir = await tmp()
    await expectFileRefused(dir, 'bad.json', { gossip: { degree: 0 } }, /gossip\.degree/)
    await expectFileRefused(dir, 'typo.json', { gossip: { hearbeatMs: 500 } }, /hearbeatMs/)
    await writeFile(join(dir, 'ok.json'), JSON.stringify({ gossip: { heartbeatMs: 700, degree: 4, floodPublish: false, lazyDegree: 2, lazyFactor: 0.5, idontwantMinBytes: 1_024 } }))
    const daemons: Daemon[] = []
    try {
      daemons.push(await startBare(dir, 'a', 'ok.json'))
      daemons.push(await startBare(dir, 'b'))
      const [tuned, plain] = daemons.map(d => (d.node.libp2p.services.pubsub as unknown as { opts: Record<string, unknown> }).opts)
      expect(tuned).toMatchObject({ heartbeatInterval: 700, D: 4, Dlo: 3, Dhi: 8, floodPublish: false, Dlazy: 2, gossipFactor: 0.5, idontwantMinDataSize: 1_024 })
      // untuned: gossipsub's own
      expect(plain).toMatchObject({ heartbeatInterval: 1_000, D: 6, floodPublish: true, Dlazy: 6, gossipFactor: 0.25, idontwantMinDataSize: 512 })
    } finally {
      for (const d of daemons) await d.stop()
    }
  })
})

describe('a timer flag', () => {
  it('takes milliseconds up to the longest a timer can wait (a longer one fired at once)', () => {
    expect(timerMsFlag('--max-call-ms')('600000')).toBe(600_000)
    expect(() => timerMsFlag('--max-call-ms')('99999999999999')).toThrow(/^--max-call-ms is at most 2147483647 \(the longest a timer can wait\)/)
    expect(() => timerMsFlag('--max-call-ms')('0')).toThrow(/positive whole number/)
  })
})

describe('the control API\'s connection timers (http)', () => {
  const tmp = useTmpDirs()

  it('are options of the config file, each refused by name when out of range', async () => {
    const dir = await tmp()
    await expectFileRefused(dir, 'bad.json', { http: { keepAliveMs: 5 } }, /http\.keepAliveMs/)
    await expectFileRefused(dir, 'typo.json', { http: { keepAlive: 5_000 } }, /keepAlive/)
    await writeFile(join(dir, 'ok.json'), JSON.stringify({ http: { keepAliveMs: 5_000, requestTimeoutMs: 2_000, closeGraceMs: 0 } }))
    const daemon = await startBare(dir, 'a', 'ok.json')
    try {
      // what a client's pool goes by: the server's idle timeout, in seconds
      const res = await fetch(`${daemon.api.url}/v1/health`)
      expect(res.headers.get('keep-alive')).toBe('timeout=5')
    } finally {
      await daemon.stop()
    }
  })

  it('take the body\'s nesting limit and an event stream\'s buffer, each refused by name when out of range', async () => {
    const dir = await tmp()
    await expectFileRefused(dir, 'flat.json', { http: { maxJsonDepth: 15 } }, /http\.maxJsonDepth/)
    await expectFileRefused(dir, 'deep.json', { http: { maxJsonDepth: 1_001 } }, /http\.maxJsonDepth/)
    await expectFileRefused(dir, 'tiny.json', { http: { sseMaxBufferedBytes: 1_024 } }, /http\.sseMaxBufferedBytes/)
    await writeFile(join(dir, 'depth.json'), JSON.stringify({ http: { maxJsonDepth: 16, sseMaxBufferedBytes: 65_536 } }))
    const config = await resolveDaemonConfig({ config: join(dir, 'depth.json'), data: join(dir, 'd'), api: '127.0.0.1:0', agents: 'echo' }, {})
    expect(config.http).toEqual({ maxJsonDepth: 16, sseMaxBufferedBytes: 65_536 })
    const daemon = await startDaemon(config)
    try {
      const submit = async (input: unknown): Promise<Response> => await fetch(`${daemon.api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'echo', input }) })
      // the body is level 1, its input level 2: sixteen levels, then seventeen
      const nested = (levels: number): unknown => levels === 0 ? 1 : [nested(levels - 1)]
      expect((await submit(nested(15))).status).toBe(202)
      const deep = await submit(nested(16))
      expect(deep.status).toBe(400)
      expect(await deep.json()).toMatchObject({ error: { message: 'body nests arrays and objects deeper than 16 levels' } })
    } finally {
      await daemon.stop()
    }
  })
})

describe('connection pings', () => {
  const tmp = useTmpDirs()

  it('pings each connection every pingIntervalMs (30 s by default), and refuses a bad interval by name', async () => {
    const dir = await tmp()
    await expectFileRefused(dir, 'bad.json', { pingIntervalMs: 5 }, /pingIntervalMs/)
    // in code too: setInterval would take these as 1 ms
    for (const pingIntervalMs of [0, -5, Number.NaN, 1.5]) {
      await expect(createAgentNode({ dataDir: join(dir, 'never'), pingIntervalMs })).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/pingIntervalMs/) })
    }
    await writeFile(join(dir, 'ok.json'), JSON.stringify({ pingIntervalMs: 1_000 }))
    const daemons: Daemon[] = []
    const monitorInterval = (d: Daemon): unknown => (d.node.libp2p as unknown as { components: { connectionMonitor: { pingIntervalMs: number } } }).components.connectionMonitor.pingIntervalMs
    try {
      const fast = await startBare(dir, 'a', 'ok.json')
      daemons.push(fast)
      const plain = await startBare(dir, 'b')
      daemons.push(plain)
      expect([monitorInterval(fast), monitorInterval(plain)]).toEqual([1_000, 30_000])
      const toPlain = await fast.node.libp2p.dial(plain.node.libp2p.getMultiaddrs())
      // the monitor sets a connection's rtt when it pings over it
      await waitFor(() => toPlain.rtt !== undefined, { timeoutMs: 15_000, what: 'a ping from the node with a 1 s interval' })
      const toFast = plain.node.libp2p.getConnections(fast.node.libp2p.peerId)
      expect(toFast.length).toBeGreaterThan(0)
      expect(toFast.map(c => c.rtt), 'the default interval has not come round yet').toEqual(toFast.map(() => undefined))
    } finally {
      for (const d of daemons) await d.stop()
    }
  })
})

describe('task options', () => {
  const tmp = useTmpDirs()

  it('has the documented defaults, in the resolver and in a config without tasks', async () => {
    expect(resolveTaskOptions({})).toEqual(DOCUMENTED_DEFAULTS)
    expect(TASK_OPTION_DEFAULTS).toEqual(DOCUMENTED_DEFAULTS)
    expect((await resolveDaemonConfig({}, {})).tasks).toEqual(DOCUMENTED_DEFAULTS)
  })

  it('accepts every documented key in the config file\'s tasks object', async () => {
    const dir = await tmp()
    // a value other than the default for each, so each is seen to arrive
    const tasks = Object.fromEntries(Object.entries(DOCUMENTED_DEFAULTS).map(([key, value]) =>
      [key, typeof value === 'boolean' ? !value : key === 'renewFraction' ? 0.5 : value + 1]))
    await writeFile(join(dir, 'config.json'), JSON.stringify({ tasks }))
    const config = await resolveDaemonConfig({ config: join(dir, 'config.json') }, {})
    expect(config.tasks).toEqual(tasks)
  })

  it('reach the parts they bound: presence expiry, the RPC endpoints\' limits, the cache of finished tasks', async () => {
    const dir = await tmp()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ tasks: { presenceExpiryIntervals: 5, rpcMaxConcurrentHandlers: 7, rpcMaxConsecutiveTimeouts: 4, recentFinished: 10, recentFinishedBytes: 4_096 } }))
    const daemon = await startDaemon(await resolveDaemonConfig({ config: join(dir, 'config.json'), data: join(dir, 'data'), api: '127.0.0.1:0', agents: 'echo' }, {}))
    try {
      const layer = daemon.node.tasks as any
      expect(layer.presence.init.expiryIntervals).toBe(5)
      for (const rpc of [layer.leaseRpc, layer.recordsRpc]) expect([rpc.init.maxConcurrentHandlers, rpc.init.maxConsecutiveTimeouts]).toEqual([7, 4])
      expect([layer.replica.idx.finished.maxEntries, layer.replica.idx.finished.maxBytes]).toEqual([10, 4_096])
    } finally {
      await daemon.stop()
    }
  })

  it('fills in the defaults around the keys a config file sets', async () => {
    const dir = await tmp()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ tasks: { keepRanks: 2, waitPollCapMs: 4_000 } }))
    const config = await resolveDaemonConfig({ config: join(dir, 'config.json') }, {})
    expect(config.tasks).toEqual({ ...DOCUMENTED_DEFAULTS, keepRanks: 2, waitPollCapMs: 4_000 })
  })

  it.each([
    [{ keepRank: 2 }, /tasks: unknown task option "keepRank" \(did you mean "keepRanks"\?\)/],
    [{ frobnicate: true }, /tasks: unknown task option "frobnicate"$/],
    [{ agents: ['echo'] }, /unknown task option "agents"/]
  ])('rejects the unknown key in tasks %j, naming it', async (tasks, message) => {
    const dir = await tmp()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ tasks }))
    const err = await resolveDaemonConfig({ config: join(dir, 'config.json') }, {}).catch(e => e)
    expect(err.name).toBe('InvalidConfigError')
    expect(err.message).toMatch(message)
  })

  it('says where a task option given at the top of the file belongs', async () => {
    const dir = await tmp()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ bogus: 1, leaseMs: 5_000 }))
    const err = await resolveDaemonConfig({ config: join(dir, 'config.json') }, {}).catch(e => e)
    expect(err.name).toBe('InvalidConfigError')
    expect(err.message).toMatch(/Unrecognized key: "bogus"; "leaseMs" is a task option: put it under "tasks" \(\{"tasks": \{"leaseMs": \.\.\.\}\}\)$/)
  })

  it('says where an option of another section belongs, at the top of the file or a door\'s one level too high', async () => {
    const dir = await tmp()
    await expectFileRefused(dir, 'http.json', { maxWaitMs: 5_000 }, /"maxWaitMs" is an http option: put it under "http" \(\{"http": \{"maxWaitMs": \.\.\.\}\}\)$/)
    await expectFileRefused(dir, 'door.json', { maxCallMs: 1_000 }, /"maxCallMs" is an option of the mcp door: put it under "doors\.mcp" \(\{"doors": \{"mcp": \{"maxCallMs": \.\.\.\}\}\}\)$/)
    await expectFileRefused(dir, 'doors.json', { doors: { sendWaitMs: 1_000 } }, /"sendWaitMs" is an option of the a2a door: put it under "a2a" \(\{"a2a": \{"sendWaitMs": \.\.\.\}\}\)$/)
    await expectFileRefused(dir, 'llm.json', { maxRetries: 1 }, /"maxRetries" is an llm option: put it under "llm"/)
    await expectFileRefused(dir, 'gossip.json', { heartbeatMs: 700 }, /"heartbeatMs" is a gossip option: put it under "gossip"/)
    await expectFileRefused(dir, 'both.json', { requestTimeoutMs: 9_000 }, /"requestTimeoutMs" is an option of several sections: put it under "http" \(\{"http": \{"requestTimeoutMs": \.\.\.\}\}\) or "doors\.openai"/)
    await expectFileRefused(dir, 'whole.json', { openai: {} }, /"openai" is a door: put it under "doors"/)
  })

  it('refuses a door\'s attemptTimeoutMs past a task\'s longest timeoutMs (7 days), which made every call of the door fail', async () => {
    const dir = await tmp()
    for (const door of ['openai', 'mcp', 'a2a']) {
      await expectFileRefused(dir, `${door}.json`, { doors: { [door]: { attemptTimeoutMs: 604_800_001 } } }, new RegExp(`doors\\.${door}\\.attemptTimeoutMs`))
    }
    const ok = join(dir, 'week.json')
    await writeFile(ok, JSON.stringify({ doors: { mcp: { attemptTimeoutMs: 604_800_000 } } }))
    await expect(resolveDaemonConfig({ config: ok }, {})).resolves.toBeDefined()
    const r = await runCli(['mcp', '--api', 'http://127.0.0.1:9', '--attempt-timeout-ms', '604800001'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/--attempt-timeout-ms is at most 604800000 \(7 days, a task's longest timeoutMs\)/)
  })

  it.each([
    [{ leaseMs: 0 }, /tasks\.leaseMs/],
    [{ leaseMs: 1 }, /tasks\.leaseMs: at least 100 \(--lease-ms/],
    [{ leaseMs: 3_600_001 }, /tasks\.leaseMs: at most 3600000 \(an hour/],
    [{ defaultTimeoutMs: 604_800_001 }, /tasks\.defaultTimeoutMs: at most 604800000 \(7 days/],
    [{ renewFraction: 1 }, /tasks\.renewFraction/],
    // a renewal must leave the lease time for its round trips: 0.999 of a 1 s lease failed every task longer than a lease
    [{ leaseMs: 1_000, renewFraction: 0.999 }, /^tasks\.renewFraction \(0\.999\) of leaseMs \(1000\) renews 1 ms before the lease ends: it must leave at least 50 ms/],
    [{ leaseMs: 100, renewFraction: 0.9 }, /^tasks\.renewFraction \(0\.9\) of leaseMs \(100\) renews 10 ms before the lease ends/],
    [{ membershipWindowMs: 1.5 }, /tasks\.membershipWindowMs/],
    [{ placementMoveAfterMs: '120000' }, /tasks\.placementMoveAfterMs/],
    [{ placementMoveAfterMs: 10_000_000_000_000 }, /tasks\.placementMoveAfterMs: at most \d+ \(ten years\)/],
    [{ defaultDeadlineMs: 9_007_199_254_740_991 }, /tasks\.defaultDeadlineMs: at most 31536000000 \(a year/],
    [{ syncWrites: 'yes' }, /tasks\.syncWrites/],
    // bounds that contradict each other (the cap won without a word)
    [{ backoffBaseMs: 100_000, backoffCapMs: 10 }, /^tasks\.backoffBaseMs \(100000\) is above backoffCapMs \(10\): it must be at most that$/],
    [{ reannounceBaseMs: 70_000 }, /^tasks\.reannounceBaseMs \(70000\) is above reannounceCapMs \(60000\)/],
    [{ maxInlineResultBytes: 2_000_000 }, /^tasks\.maxInlineResultBytes \(2000000\) is above maxResultBytes/],
    [{ prerunMaxMs: 2_000 }, /^tasks\.prerunMaxMs \(2000\) is above handoffSuspectMs \(1500\)/],
    [{ handoffTimeoutMs: 1_000 }, /^tasks\.handoffSuspectMs \(1500\) is above handoffTimeoutMs \(1000\)/]
  ])('rejects the bad value in tasks %j, naming the key', async (tasks, message) => {
    const dir = await tmp()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ tasks }))
    const err = await resolveDaemonConfig({ config: join(dir, 'config.json') }, {}).catch(e => e)
    expect(err.name).toBe('InvalidConfigError')
    expect(err.message).toMatch(message)
  })

  it('checks options given in code the same way, and leaves agents to the caller', () => {
    expect(() => resolveTaskOptions({ claimRanks: 0 })).toThrow(expect.objectContaining({ name: 'InvalidConfigError', message: expect.stringMatching(/claimRanks/) }))
    expect(resolveTaskOptions({ agents: [], leaseMs: 500 })).toEqual({ ...DOCUMENTED_DEFAULTS, leaseMs: 500 })
    // exactly the margin is enough, though 1 - 0.9 is not quite 0.1 in floating point
    expect(resolveTaskOptions({ leaseMs: 500, renewFraction: 0.9 })).toMatchObject({ leaseMs: 500, renewFraction: 0.9 })
    expect(() => resolveTaskOptions({ waitPollBaseMs: 9_000 })).toThrow(expect.objectContaining({ name: 'InvalidConfigError', message: 'task options: waitPollBaseMs (9000) is above waitPollCapMs (8000): it must be at most that' }))
  })
})

describe('agentmesh node --lease-ms', () => {
  const tmp = useTmpDirs()

  it('parses, and wins over AGENTMESH_LEASE_MS, which wins over the config file', async () => {
    const dir = await tmp()
    const file = join(dir, 'config.json')
    await writeFile(file, JSON.stringify({ tasks: { leaseMs: 9_000, claimRanks: 5 } }))
    const flags = await parseNodeFlags(['--config', file, '--lease-ms', '2500'])
    expect(flags.leaseMs).toBe(2_500)

    const fromFlag = await resolveDaemonConfig(flags, { AGENTMESH_LEASE_MS: '7000' })
    expect(fromFlag.tasks.leaseMs).toBe(2_500)
    expect(fromFlag.tasks.claimRanks).toBe(5) // the file's other task options still apply

    const fromEnv = await resolveDaemonConfig(await parseNodeFlags(['--config', file]), { AGENTMESH_LEASE_MS: '7000' })
    expect(fromEnv.tasks.leaseMs).toBe(7_000)

    const fromFile = await resolveDaemonConfig(await parseNodeFlags(['--config', file]), {})
    expect(fromFile.tasks.leaseMs).toBe(9_000)

    const byDefault = await resolveDaemonConfig(await parseNodeFlags([]), {})
    expect(byDefault.tasks.leaseMs).toBe(10_000)
  })

  it.each(['0', '-5', '1.5', 'abc', '1e4', '0x10', ''])('rejects --lease-ms %j with a one-line named error', async value => {
    const err = await parseNodeFlags(['--lease-ms', value]).catch(e => e)
    expect(err.name).toBe('InvalidConfigError')
    expect(err.message).toBe(`--lease-ms takes a positive whole number, got "${value}"`)
  })

  it.each(['-5', '1.5', 'soon', '0x10', '1e4', ''])('names what a whole-number flag takes when given %j (a negative one is a whole number, but not 0 or more)', value => {
    expect(() => wholeNumber('--timeout')(value)).toThrow(`--timeout takes a whole number, 0 or more, got "${value}"`)
  })

  it('refuses 0 where the server or the simulator would refuse it later: --max-attempts, --task-timeout, sim --tasks and --nodes', async () => {
    for (const args of [['submit', '--capability', 'echo', '--input', '1', '--max-attempts', '0'], ['submit', '--capability', 'echo', '--input', '1', '--task-timeout', '0'], ['sim', '--tasks', '0'], ['sim', '--nodes', '0'], ['tasks', '--limit', '0'], ['memory', 'search', 'c1', '--vector', '[1]', '-k', '0']]) {
      const r = await runCli(args, { timeoutMs: 20_000 })
      expect(r.code, args.join(' ')).toBe(1)
      expect(r.stderr).toMatch(/takes a positive whole number, got "0"/)
    }
  })

  it('a client command refuses an --api port that fetch blocks, saying so, where it said no node answers there', async () => {
    const r = await runCli(['status', '--api', 'http://127.0.0.1:6666'], { timeoutMs: 20_000 })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/port 6666 is one that fetch refuses to connect to/)
    expect(r.stderr).not.toMatch(/no node answers/)
  })

  it('refuses an input or result limit over 64 MiB: every frame limit follows them', () => {
    expect(() => resolveTaskOptions({ maxInputBytes: 1e12 })).toThrow(/maxInputBytes/)
    expect(() => resolveTaskOptions({ maxResultBytes: 128 * 1024 * 1024 })).toThrow(/maxResultBytes/)
    expect(resolveTaskOptions({ maxInputBytes: 64 * 1024 * 1024 }).maxInputBytes).toBe(64 * 1024 * 1024)
  })

  it('rejects a bad AGENTMESH_LEASE_MS, and a lease longer than a member grants (an hour)', async () => {
    // a bad value from the environment names its variable; overridden by a flag, it is not used
    await expect(resolveDaemonConfig({}, { AGENTMESH_API: 'garbage' })).rejects.toMatchObject({ name: 'InvalidConfigError', message: 'AGENTMESH_API: api: expected HOST:PORT, e.g. 127.0.0.1:7070' })
    expect((await resolveDaemonConfig({ api: '127.0.0.1:0' }, { AGENTMESH_API: 'garbage' })).api).toBe('127.0.0.1:0')
    await expect(resolveDaemonConfig({}, { AGENTMESH_LEASE_MS: 'soon' })).rejects.toMatchObject({ name: 'InvalidConfigError', message: 'AGENTMESH_LEASE_MS takes a positive whole number, got "soon"' })
    for (const value of ['3600001', '3000000000']) {
      const flags = await parseNodeFlags(['--lease-ms', value])
      await expect(resolveDaemonConfig(flags, {})).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/tasks\.leaseMs: at most 3600000 \(an hour/) })
    }
    expect((await resolveDaemonConfig(await parseNodeFlags(['--lease-ms', '3600000']), {})).tasks.leaseMs).toBe(3_600_000)
    // an attempt's timeout the members' schema refuses is refused here, not met as a 503 at submit
    expect(() => resolveTaskOptions({ defaultTimeoutMs: 7 * 24 * 3600_000 + 1 })).toThrow(expect.objectContaining({ name: 'InvalidConfigError', message: expect.stringMatching(/defaultTimeoutMs: at most 604800000/) }))
  })
})
