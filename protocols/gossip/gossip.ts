import { TypedEventEmitter } from '@libp2p/interface'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { byteLength, hasValidId } from '../task/schema.js'
import { DEFAULT_MAX_INPUT_BYTES, ENVELOPE_OVERHEAD_BYTES, presenceTopic, resultsTopic, tasksTopic, watchTopic } from './constants.js'
import { open, seal } from './envelope.js'
import { presenceSchema, taskAnnouncementSchema, taskNoticeSchema } from './messages.js'
import type { Presence, TaskAnnouncement, TaskNotice } from './messages.js'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'
import type { z } from 'zod'

export type RejectReason = 'oversized' | 'malformed' | 'bad-signature' | 'invalid-schema' | 'wrong-topic' | 'bad-task-id' | 'input-too-large'

export interface MeshGossipComponents {
  pubsub: GossipSub
  privateKey: PrivateKey
  peerId: PeerId
  log: Logger
}

export interface MeshGossipInit {
  mesh: string
  /** @default 1 MiB */
  maxInputBytes?: number
}

export interface MeshGossipEvents {
  task: CustomEvent<TaskAnnouncement>
  notice: CustomEvent<TaskNotice>
  presence: CustomEvent<Presence>
  /** a task state change on the watch topic (only while this node watches) */
  watch: CustomEvent<TaskNotice>
}

type Kind = 'task' | 'notice' | 'presence' | 'watch'

/**
 * The mesh's three kinds of topic. Every message is a signed envelope, checked before delivery
 * (size, signature, schema, and for tasks the content-hash id and the topic's capability);
 * rejected messages count against the sender's gossipsub score and here by reason.
 */
export class MeshGossip extends TypedEventEmitter<MeshGossipEvents> {
  readonly rejected: Record<RejectReason, number> = { oversized: 0, malformed: 0, 'bad-signature': 0, 'invalid-schema': 0, 'wrong-topic': 0, 'bad-task-id': 0, 'input-too-large': 0 }
  private readonly c: MeshGossipComponents
  private readonly mesh: string
  private readonly maxInputBytes: number
  private readonly topics = new Map<string, Kind>()
  private readonly validated = new WeakMap<Uint8Array, unknown>()
  private readonly onMessage = (evt: CustomEvent<Message>): void => { this.deliver(evt.detail) }
  private watchers = 0

  constructor (components: MeshGossipComponents, init: MeshGossipInit) {
    super()
    this.c = components
    this.mesh = init.mesh
    this.maxInputBytes = init.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
  }

  get maxMessageBytes (): number {
    return this.maxInputBytes + ENVELOPE_OVERHEAD_BYTES
  }

  start (): void {
    this.c.pubsub.addEventListener('message', this.onMessage)
    this.join(resultsTopic(this.mesh), 'notice')
    this.join(presenceTopic(this.mesh), 'presence')
  }

  stop (): void {
    this.c.pubsub.removeEventListener('message', this.onMessage)
    for (const topic of this.topics.keys()) {
      this.c.pubsub.topicValidators.delete(topic)
      // pubsub may already be stopped (the node's network went first)
      try { this.c.pubsub.unsubscribe(topic) } catch {}
    }
    this.topics.clear()
  }

  /**
   * Follows the mesh's task state changes while `watching` is held above zero (one per open
   * stream): the watch topic is joined on the first and left on the last, so a mesh nobody watches
   * carries none of it.
   */
  watch (on: boolean): void {
    this.watchers = Math.max(0, this.watchers + (on ? 1 : -1))
    const topic = watchTopic(this.mesh)
    if (this.watchers > 0) this.join(topic, 'watch')
    else if (this.topics.has(topic)) {
      this.topics.delete(topic)
      this.c.pubsub.topicValidators.delete(topic)
      try { this.c.pubsub.unsubscribe(topic) } catch {}
    }
  }

  /** Tells watchers of the mesh of a state change; costs nothing when no peer watches. */
  async publishWatch (notice: Omit<TaskNotice, 'kind' | 'from' | 'at'>): Promise<void> {
    const topic = watchTopic(this.mesh)
    if (this.c.pubsub.getSubscribers(topic).length === 0) return
    await this.publish(topic, { kind: 'notice', from: this.c.peerId.toString(), at: Date.now(), ...notice })
  }

  /** Receive announcements for a capability this node can run. */
  subscribeCapability (capability: string): void {
    this.join(tasksTopic(this.mesh, capability), 'task')
  }

  /** Announces to every subscriber of the capability, this node included when it is one. */
  async announceTask (task: TaskAnnouncement['task'], placement: TaskAnnouncement['placement']): Promise<void> {
    const topic = tasksTopic(this.mesh, task.capability)
    const announcement: TaskAnnouncement = { kind: 'task', from: this.c.peerId.toString(), at: Date.now(), task, placement }
    await this.publish(topic, announcement)
    if (this.topics.has(topic)) this.safeDispatchEvent('task', { detail: announcement })
  }

  async publishNotice (notice: Omit<TaskNotice, 'kind' | 'from' | 'at'>): Promise<void> {
    await this.publish(resultsTopic(this.mesh), { kind: 'notice', from: this.c.peerId.toString(), at: Date.now(), ...notice })
  }

  async publishPresence (presence: Omit<Presence, 'kind' | 'from' | 'at'>): Promise<void> {
    await this.publish(presenceTopic(this.mesh), { kind: 'presence', from: this.c.peerId.toString(), at: Date.now(), ...presence })
  }

  /** Peers subscribed to a capability's task topic (a lower bound on who can run it). */
  topicPeers (capability: string): PeerId[] {
    return this.c.pubsub.getSubscribers(tasksTopic(this.mesh, capability))
  }

  private join (topic: string, kind: Kind): void {
    if (this.topics.has(topic)) return
    this.topics.set(topic, kind)
    this.c.pubsub.topicValidators.set(topic, async (_peer, msg) => this.validate(topic, kind, msg))
    this.c.pubsub.subscribe(topic)
  }

  private async publish (topic: string, payload: object): Promise<void> {
    const data = await seal(this.c.privateKey, topic, payload)
    try {
      await this.c.pubsub.publish(topic, data)
    } catch (err: any) {
      // publishing a duplicate or with no peers yet is not an error worth surfacing: the pull path covers it
      this.c.log('publish on %s failed: %s', topic, err.message)
    }
  }

  private async validate (topic: string, kind: Kind, msg: Message): Promise<TopicValidatorResult> {
    const reject = (reason: RejectReason): TopicValidatorResult => {
      this.rejected[reason]++
      this.c.log('rejected a message on %s: %s', topic, reason)
      return TopicValidatorResult.Reject
    }
    if (msg.data.byteLength > this.maxMessageBytes) return reject('oversized')
    const opened = await open(topic, msg.data)
    if (!opened.ok) return reject(opened.reason)
    const schema: z.ZodType<unknown> = kind === 'task' ? taskAnnouncementSchema : kind === 'notice' || kind === 'watch' ? taskNoticeSchema : presenceSchema
    const parsed = schema.safeParse(opened.payload)
    if (!parsed.success) return reject('invalid-schema')
    if (kind === 'task') {
      const task = (parsed.data as TaskAnnouncement).task
      if (tasksTopic(this.mesh, task.capability) !== topic) return reject('wrong-topic')
      if (byteLength(task.input) > this.maxInputBytes) return reject('input-too-large')
      if (!hasValidId(task)) return reject('bad-task-id')
    }
    this.validated.set(msg.data, parsed.data)
    return TopicValidatorResult.Accept
  }

  private deliver (msg: Message): void {
    const kind = this.topics.get(msg.topic)
    const payload = this.validated.get(msg.data)
    if (kind === undefined || payload === undefined) return
    this.validated.delete(msg.data)
    if (kind === 'task') this.safeDispatchEvent('task', { detail: payload as TaskAnnouncement })
    else if (kind === 'notice') this.safeDispatchEvent('notice', { detail: payload as TaskNotice })
    else if (kind === 'watch') this.safeDispatchEvent('watch', { detail: payload as TaskNotice })
    else this.safeDispatchEvent('presence', { detail: payload as Presence })
  }
}
