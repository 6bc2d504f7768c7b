import { Repeater } from './repeater.js'
import type { TaskComponents } from './components.js'
import type { TaskService } from './task-service.js'
import type { Logger } from '@libp2p/interface'

interface Announced {
  at: number
  count: number
}

/**
 * Recovery. Every replica expires its own lapsed leases (retry after backoff, or dead after
 * maxAttempts) and tasks past their deadline; the first live member of a task's replica set also
 * announces what changed and re-announces a claimable task with backoff, so a task whose
 * announcement was lost, or whose holder died, runs again.
 */
export class Sweeper {
  readonly stats = { sweeps: 0, reannounced: 0, deadNoticed: 0, expired: 0 }
  private lastRetention = 0
  private readonly c: TaskComponents
  private readonly tasks: TaskService
  private readonly log: Logger
  private readonly announced = new Map<string, Announced>()
  private readonly loop: Repeater

  constructor (components: TaskComponents, tasks: TaskService) {
    this.c = components
    this.tasks = tasks
    this.log = components.logger('agentmesh:sweeper')
    this.loop = new Repeater('sweep', () => this.c.options.sweepIntervalMs, async () => this.sweep(), this.log)
  }

  start (): void {
    this.loop.start()
  }

  async stop (): Promise<void> {
    await this.loop.stop()
  }

  private isFirstReplica (id: string): boolean {
    return this.c.replicaSets.for(id)[0]?.equals(this.c.peerId) ?? false
  }

  async sweep (): Promise<void> {
    this.stats.sweeps++
    for (const record of await this.c.replica.sweep()) {
      const id = record.task.id
      if (record.final?.state === 'dead') {
        this.announced.delete(id)
        this.tasks.wake(id)
        if (!this.isFirstReplica(id)) continue
        this.stats.deadNoticed++
        await this.c.gossip.publishNotice({ id, capability: record.task.capability, event: 'dead', generation: record.generation, error: record.final.reason })
      }
    }
    const now = Date.now()
    for (const id of [...this.c.replica.active]) {
      if (!this.isFirstReplica(id)) continue
      const record = await this.c.replica.claimableRecord(id)
      if (record === undefined) continue
      const seen = this.announced.get(id) ?? { at: record.task.createdAt, count: 0 }
      const due = Math.max(seen.at + this.delay(seen.count), record.notBefore ?? 0)
      // a retry whose backoff just ended goes out at once, not after the re-announce backoff
      const retryReady = record.notBefore !== undefined && record.notBefore > seen.at && now >= record.notBefore
      if (now < due && !retryReady) {
        this.announced.set(id, seen)
        continue
      }
      this.announced.set(id, { at: now, count: seen.count + 1 })
      this.stats.reannounced++
      await this.c.gossip.announceTask(record.task)
    }
    for (const id of this.announced.keys()) if (!this.c.replica.active.has(id)) this.announced.delete(id)
    // retention walks every record: at most once a minute, or per retention period when that is shorter
    if (now - this.lastRetention >= Math.min(60_000, this.c.options.retentionMs)) {
      this.lastRetention = now
      this.stats.expired += await this.c.replica.expireRetained()
    }
  }

  private delay (count: number): number {
    return Math.min(this.c.options.reannounceCapMs, this.c.options.reannounceBaseMs * 2 ** count)
  }
}
