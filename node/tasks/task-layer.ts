import { MeshGossip, presenceTopic } from '../../protocols/gossip/index.js'
import { LEASE_PROTOCOL, LeaseClient, leaseHandler, leaseResponseSchema } from '../../protocols/lease/index.js'
import { PresenceService } from '../../protocols/presence/index.js'
import { MAX_CHILDREN, RECORDS_PROTOCOL, recordsHandler } from '../../protocols/records/index.js'
import { Replica } from '../../protocols/replica/index.js'
import { PeersHeard, RpcEndpoint, fastParse } from '../../protocols/rpc/index.js'
import { BUILTIN_AGENTS } from '../agents/index.js'
import { embedByPeers } from '../memory/remote-embed.js'
import { MemoryLayer } from '../memory/memory-layer.js'
import { AgentRuntime } from '../runtime/runtime.js'
import { LevelReplicaStore } from '../store/replica-store.js'
import { VERSION } from '../version.js'
import { signerOf } from '../../protocols/task/ed25519.js'
import { finalOf, hasValidFinal, sentBySigner } from '../../protocols/task/index.js'
import { AntiEntropy } from './anti-entropy.js'
import { Claimer } from './claimer.js'
import { eventLoopLag } from './event-loop-lag.js'
import { TaskEvents } from './events.js'
import { Executor } from './executor.js'
import { resolveTaskOptions, rpcFrameBytes } from './options.js'
import { Mover } from './mover.js'
import { Notifier } from './notifier.js'
import { Offerer } from './offerer.js'
import { Handoff } from './handoff.js'
import { RemoteWaiters } from './remote-waiters.js'
import { ProgressHub, ProgressSender } from './progress.js'
import { Membership } from './placement.js'
import { ReplicaSets } from './replica-sets.js'
import { Sweeper } from './sweeper.js'
import { ProgressRefusedError } from './errors.js'
import { TaskService } from './task-service.js'
import type { TaskComponents } from './components.js'
import type { TaskLayerInit, TaskLayerOptions } from './options.js'
import type { HandlerStats, LeaseRequest } from '../../protocols/lease/index.js'
import type { TaskNotice } from '../../protocols/gossip/index.js'
import type { OfferItem, ProgressItem, RecordsRequest } from '../../protocols/records/index.js'
import type { RpcRequestOptions } from '../../protocols/rpc/index.js'
import type { TaskRecord } from '../../protocols/task/index.js'
import type { MeshServices } from '../libp2p-options.js'
import type { Store } from '../store/store.js'
import type { ComponentLogger, Libp2p, PeerId } from '@libp2p/interface'

export interface TaskLayerHost {
  libp2p: Libp2p<MeshServices>
  store: Store
  mesh: string
  logger: ComponentLogger
  privateKey: import('@libp2p/interface').PrivateKey
}

/**
 * The task layer of a node: gossip, presence, the replica with its lease and records protocols,
 * and the agents that claim and run tasks. Built from the node's libp2p host and store.
 */
export class TaskLayer {
  readonly gossip: MeshGossip
  readonly presence: PresenceService
  readonly replica: Replica
  readonly leases: LeaseClient
  readonly runtime: AgentRuntime
  readonly service: TaskService
  readonly executor: Executor
  readonly claimer: Claimer
  readonly offerer: Offerer
  readonly handoff: Handoff
  readonly remoteWaiters: RemoteWaiters
  readonly notifier: Notifier
  readonly sweeper: Sweeper
  readonly replicaSets: ReplicaSets
  readonly membership: Membership
  readonly antiEntropy: AntiEntropy
  readonly mover: Mover
  /** vector memory: records placed like tasks, searched across the mesh */
  readonly memory: MemoryLayer
  /** claims won, executions ended, tasks dead, leases lost here: for log lines and metrics */
  readonly events = new TaskEvents()
  /** the parts' shared bag, for the few API routes that work across them (a trace) */
  readonly components: TaskComponents
  /** the resolved timers and limits */
  readonly options: TaskLayerOptions
  /** streamed progress of the tasks this node submitted: `progress.subscribe(id, listener)` */
  readonly progress: ProgressHub
  private readonly progressSender: ProgressSender
  /** peers' requests: malformed ones, and those served by op */
  readonly handlerStats: HandlerStats = { badRequests: 0, served: {} }
  /** this node's own requests to itself (not counted by op) */
  private readonly localHandlerStats: HandlerStats = { badRequests: 0 }
  private readonly leaseRpc: RpcEndpoint
  private readonly recordsRpc: RpcEndpoint

  private readonly host: TaskLayerHost
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => { this.presence.disconnected(evt.detail.toString()) }
  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.presence.connected(evt.detail.toString())
    this.handoff.connected(evt.detail.toString())
  }

  constructor (host: TaskLayerHost, init: TaskLayerInit) {
    this.host = host
    const options = resolveTaskOptions(init)
    this.options = options
    const peerId = host.libp2p.peerId
    const logger = (name: string) => host.logger.forComponent(name)
    this.runtime = new AgentRuntime(init.agents ?? BUILTIN_AGENTS, init.concurrency)
    // a store that failed a write keeps no grant, vote or result: no slot, so the node claims nothing and peers hand it nothing
    this.runtime.refusesWork = () => host.store.writeFailure !== undefined
    this.gossip = new MeshGossip({ pubsub: host.libp2p.services.pubsub, privateKey: host.privateKey, peerId, log: logger('agentmesh:gossip') }, { mesh: host.mesh, maxInputBytes: options.maxInputBytes })
    this.presence = new PresenceService({
      gossip: this.gossip,
      pubsub: host.libp2p.services.pubsub,
      peerId,
      presenceTopic: presenceTopic(host.mesh),
      addresses: () => host.libp2p.getMultiaddrs(),
      learnAddresses: async (peer, addrs) => { await host.libp2p.peerStore.merge(peer, { multiaddrs: addrs }) },
      log: logger('agentmesh:presence')
    }, {
      intervalMs: options.presenceIntervalMs,
      earlyGapMs: options.presenceEarlyGapMs,
      expiryIntervals: options.presenceExpiryIntervals,
      // a peer that stops cleanly stays a member: placements keep naming it within the window
      onLeaving: () => { this.membership.refresh() },
      // the claimer's lag monitor: a silence in this process's own stall is not a peer's
      lastStall: () => eventLoopLag.lastStall(),
      version: VERSION,
      capabilities: () => this.runtime.capabilities(),
      freeSlots: () => this.runtime.freeSlots()
    })
    this.replica = new Replica(new LevelReplicaStore(host.store, { sync: options.syncWrites }), {
      me: peerId.toString(),
      sign: signerOf(host.privateKey),
      voteSignBatchMax: options.voteSignBatchMax,
      backoffBaseMs: options.backoffBaseMs,
      backoffCapMs: options.backoffCapMs,
      retentionMs: options.retentionMs,
      recentFinished: options.recentFinished,
      recentFinishedBytes: options.recentFinishedBytes,
      // who waits on the task here, or on another node through this member, is told now
      onFinal: (record, result) => {
        this.remoteWaiters.finished(record, result)
        this.service.wake(record.task.id)
      },
      log: logger('agentmesh:replica')
    })
    const frame = rpcFrameBytes(options)
    const heard = new PeersHeard()
    const rpcLimits = { requestTimeoutMs: options.rpcTimeoutMs, maxConcurrentHandlers: options.rpcMaxConcurrentHandlers, maxConsecutiveTimeouts: options.rpcMaxConsecutiveTimeouts, heard }
    this.leaseRpc = new RpcEndpoint(host.libp2p, { protocol: LEASE_PROTOCOL, handler: leaseHandler(this.replica, this.handlerStats), maxFrameBytes: frame, ...rpcLimits, log: logger('agentmesh:lease') })
    const recordsInit = {
      sharedWith: (peer: string) => this.antiEntropy.sharedWith(peer),
      digest: (peer: string, digits: number) => this.antiEntropy.digest(peer, digits),
      comparableHash: (id: string) => this.antiEntropy.comparableHash(id),
      needed: (entries: Array<[string, string]>) => this.antiEntropy.needed(entries),
      takeOffers: (items: OfferItem[]) => this.claimer.takeOffers(items),
      takeHandoff: async (record: TaskRecord, from: string, tellWithinMs?: number) => this.handoff.take(record, from, tellWithinMs),
      watch: (id: string, from: string) => { this.remoteWaiters.watch(id, from) },
      unwatch: (id: string, from: string) => { this.remoteWaiters.unwatch(id, from) },
      // a notice straight from a member vouches for its own vote in the certificate (not this node's own id: no vote of it is taken on its word)
      applyNotices: (notices: TaskNotice[], sender: string) => { for (const n of notices) this.service.applyNotice(n, sender === peerId.toString() ? undefined : sender) },
      applyProgress: (events: ProgressItem[], from: string) => { this.progress.apply(events, from) },
      recentProgress: (id: string) => this.progress.recent(id),
      children: async (id: string) => this.replica.childrenOf(id).slice(0, MAX_CHILDREN)
    }
    this.recordsRpc = new RpcEndpoint(host.libp2p, { protocol: RECORDS_PROTOCOL, handler: recordsHandler(this.replica, this.handlerStats, recordsInit), maxFrameBytes: frame, ...rpcLimits, log: logger('agentmesh:records') })
    const local = (peer: PeerId): boolean => peer.equals(peerId)
    // this node's own requests are parsed like a peer's: they carry agents' values (steps, results, waits)
    const leaseLocal = leaseHandler(this.replica, this.localHandlerStats, { copyRequests: true })
    const recordsLocal = recordsHandler(this.replica, this.localHandlerStats, { ...recordsInit, copyRequests: true })
    const records = async (peer: PeerId, req: RecordsRequest, o?: RpcRequestOptions): Promise<any> => local(peer) ? recordsLocal(req, peerId) : this.recordsRpc.request(peer, req, o)
    this.replicaSets = new ReplicaSets(this.presence, options.replicationFactor)
    this.membership = new Membership({ self: peerId.toString(), liveIds: () => this.presence.liveIds(), meta: host.store.meta, windowMs: options.membershipWindowMs, replicationFactor: options.replicationFactor, replicaSets: this.replicaSets, log: logger('agentmesh:membership').error })
    this.memory = new MemoryLayer({ peerId, libp2p: host.libp2p, store: host.store, membership: this.membership, presence: this.presence, replicaSets: this.replicaSets, replicationFactor: options.replicationFactor, rpcTimeoutMs: options.rpcTimeoutMs, embed: init.embed ?? embedByPeers(() => this.service, options.remoteEmbedWaitMs), hnswAbove: options.memoryHnswAbove, log: logger('agentmesh:memory') })
    this.leases = new LeaseClient({
      self: peerId.toString(),
      call: async (id: string, req: LeaseRequest) => {
        const peer = this.replicaSets.peerId(id)
        if (local(peer)) return leaseLocal(req, peerId)
        // a peer's answer is input like any other: parsed before anything reads it
        const parsed = fastParse(leaseResponseSchema, await this.leaseRpc.request(peer, req))
        if (!parsed.success) return { status: 'ERROR', reason: `bad answer from ${id}` }
        // a member's own vote in its reply comes from its signer
        if (parsed.data.vote?.peer === id) sentBySigner(req.id, parsed.data.vote)
        return parsed.data
      },
      pushRecord: async (id, taskId) => {
        const { record } = await this.replica.get(taskId)
        if (record !== undefined) await records(this.replicaSets.peerId(id), { op: 'put', record })
      },
      leaseMs: options.leaseMs,
      renewFraction: options.renewFraction,
      voteWaitMs: options.prerunVoteWaitMs,
      askAgainMs: options.askAgainMs,
      log: logger('agentmesh:lease-client')
    })
    // the mesh's watchers (GET /v1/events on any node) hear of submits, claims and completions here
    const self = peerId.toString()
    const watched = (n: Parameters<MeshGossip['publishWatch']>[0]): void => { this.gossip.publishWatch(n).catch(() => {}) }
    this.events.addEventListener('submitted', evt => { watched({ id: evt.detail.id, capability: evt.detail.capability, event: 'submitted', generation: 0, peer: self }) })
    this.events.addEventListener('claimed', evt => { watched({ id: evt.detail.id, capability: evt.detail.capability, event: 'running', generation: evt.detail.generation, claimId: evt.detail.claimId, peer: self }) })
    this.events.addEventListener('ran', evt => { if (evt.detail.outcome === 'completed') watched({ id: evt.detail.id, capability: evt.detail.capability, event: 'completed', generation: evt.detail.generation, claimId: evt.detail.claimId, peer: self }) })
    const components: TaskComponents = this.components = { peerId, store: host.store, replica: this.replica, gossip: this.gossip, presence: this.presence, replicaSets: this.replicaSets, membership: this.membership, memory: this.memory, leases: this.leases, records, heard, runtime: this.runtime, options, logger, events: this.events }
    this.service = new TaskService(components)
    this.progress = new ProgressHub({
      maxTasks: options.progressTasks,
      maxEventsPerTask: options.progressEventsPerTask,
      log: logger('agentmesh:progress'),
      self: peerId.toString(),
      // once per claim: the placement's attempts say who holds it (a majority granted it before the run)
      verify: async (id, claimId, peer) => (await this.service.get(id)).record.attempts.some(a => a.claimId === claimId && a.peer === peer)
    })
    this.service.progress = this.progress
    this.progressSender = new ProgressSender(async (peer, events) => {
      const answer = await records(this.replicaSets.peerId(peer), { op: 'progress', events })
      if (answer?.status !== 'OK') throw new ProgressRefusedError(`progress refused: ${String(answer?.reason ?? answer?.status)}`)
    }, options.progressQueueLimit)
    this.notifier = new Notifier(components)
    this.remoteWaiters = new RemoteWaiters(options.remoteWaitersLimit, this.notifier, options.maxInlineResultBytes)
    this.executor = new Executor(components, this.service, this.notifier)
    const me = peerId.toString()
    // a task run where it was submitted delivers its progress here directly; one submitted elsewhere
    // is kept here too, from its first event: a stream asks this node when the submitter is away
    this.executor.progressOut = (submitter, item) => {
      if (submitter !== me) {
        this.progressSender.add(submitter, item)
        this.progress.track(item.id)
      }
      this.progress.apply([item], me)
    }
    this.claimer = new Claimer(components, this.executor)
    this.offerer = new Offerer(components, this.claimer)
    this.service.offerer = this.offerer
    this.service.ownRuns = this.claimer.ownRuns
    // an outcome told with a handoff's answer is applied as a notice straight from that member
    this.handoff = new Handoff(components, this.claimer, { notifier: this.notifier, apply: (n, sender) => { this.service.applyNotice(n, sender) } })
    this.service.handoff = this.handoff
    this.mover = new Mover(components)
    this.service.mover = this.mover
    this.sweeper = new Sweeper(components, this.service, this.mover)
    this.antiEntropy = new AntiEntropy(components)
    // a cancel seen in gossip aborts a local run at once, before its next renewal would say so
    this.gossip.addEventListener('notice', evt => {
      if (evt.detail.event === 'canceled') void this.cancelIfCertified(evt.detail).catch(() => {})
    })
    this.service.stopRun = id => { this.stopLocal(id) }
  }

  /**
   * Aborts a local run on a cancel notice only when it carries a certificate of the task's
   * placement: anyone can publish a notice, and one believed aborted the agent and burnt the attempt.
   */
  private async cancelIfCertified (n: TaskNotice): Promise<void> {
    if (!this.executor.running().includes(n.id) && !this.claimer.ownRuns.waitsAhead(n.id)) return
    const { record } = await this.replica.get(n.id)
    if (record !== undefined && n.cert?.value.state === 'canceled' && hasValidFinal(record, finalOf(n.cert, Date.now()))) this.stopLocal(n.id)
    else this.executor.stats.forgedCancels++
  }

  /** A canceled task's run here is aborted, or its wait for a slot ends. */
  private stopLocal (id: string): void {
    this.executor.cancel(id)
    this.claimer.ownRuns.letGoAhead(id)
  }

  async start (): Promise<void> {
    await this.replica.load()
    await this.membership.load()
    await this.leaseRpc.start()
    await this.recordsRpc.start()
    await this.memory.start()
    this.gossip.start()
    this.presence.start()
    this.host.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.host.libp2p.addEventListener('peer:connect', this.onConnect)
    this.service.start()
    this.claimer.start()
    this.sweeper.start()
    this.antiEntropy.start()
    this.mover.start()
  }

  async stop (): Promise<void> {
    // first, so peers hand and offer this node nothing more while it winds down
    await this.presence.farewell()
    this.executor.stop()
    await this.claimer.stop(this.options.stopClaimGraceMs)
    this.executor.abandon()
    this.leases.stopAsking()
    // grants that came after their claims ended are given back while the endpoints are still open
    await this.leases.settled(this.options.stopGiveBackMs)
    await this.sweeper.stop()
    await this.antiEntropy.stop()
    await this.mover.stop()
    this.service.stop()
    this.host.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.host.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.presence.stop()
    this.gossip.stop()
    await this.leaseRpc.stop()
    await this.recordsRpc.stop()
    await this.memory.stop()
    await this.membership.save().catch(() => {})
  }

  /** Counters for /v1/metrics and the simulator's report. */
  stats (): Record<string, unknown> {
    return {
      gossipRejected: { ...this.gossip.rejected },
      tasks: { ...this.service.stats },
      claims: { ...this.claimer.stats },
      offers: { ...this.offerer.stats },
      handoffs: { ...this.handoff.stats },
      notices: { ...this.notifier.stats },
      remoteWaiters: { ...this.remoteWaiters.stats },
      executions: { ...this.executor.stats, running: this.executor.running().length, reportsPending: this.executor.reportsPending },
      progress: { ...this.progress.stats, ...this.progressSender.stats },
      replica: { ...this.replica.stats, active: this.replica.activeMember.size, copies: this.replica.active.size - this.replica.activeMember.size },
      leases: { ...this.leases.stats },
      sweeper: { ...this.sweeper.stats },
      antiEntropy: { ...this.antiEntropy.stats },
      placements: { ...this.mover.stats, membersSaveFailures: this.membership.stats.saveFailures },
      presence: { ...this.presence.stats },
      store: { ...this.host.store.stats },
      memory: { ...this.memory.stats, ...this.memory.local.stats, records: this.memory.local.size },
      rpc: { lease: { ...this.leaseRpc.stats }, records: { ...this.recordsRpc.stats }, badRequests: this.handlerStats.badRequests + this.localHandlerStats.badRequests, served: { ...this.handlerStats.served } }
    }
  }
}
