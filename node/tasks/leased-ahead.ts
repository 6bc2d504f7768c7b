import type { HeldLease } from '../../protocols/lease/index.js'
import type { AgentRuntime, Slot } from '../runtime/runtime.js'

/** A place taken in the queue before the lease is asked for: given up, or waited in with the lease. */
export interface AheadTicket {
  /** Resolves with a slot once one frees, or undefined when the lease ends first, the task is let go or the node stops. */
  wait: (lease: HeldLease) => Promise<Slot | undefined>
  /** the lease was not granted: the place goes back */
  cancel: () => void
}

interface Waiting {
  capability: string
  start: (slot: Slot | undefined) => void
}

/**
 * Tasks submitted here and leased with their store while every slot of their capability was busy
 * and no other peer had one free: one request per member, where storing the task and claiming it
 * later is two. They wait here and take slots as they free, oldest first and before queued offers
 * (they already hold leases). At most `perSlot` times the agent's concurrency wait per capability,
 * and each at most until its lease's first renewal (the claimer gives it back then), so a slow
 * agent does not hoard tasks that peers freed later could run.
 */
export class LeasedAhead {
  /** by task id, in the order they came: a Map iterates in insertion order */
  private readonly waiting = new Map<string, Waiting>()
  private readonly places = new Map<string, number>()

  constructor (private readonly runtime: Pick<AgentRuntime, 'concurrency' | 'reserve'>, private readonly perSlot: number) {}

  get size (): number {
    return this.waiting.size
  }

  /** A place for a task of `capability`, or undefined when as many as allowed wait already. */
  reserve (capability: string): AheadTicket | undefined {
    const taken = this.places.get(capability) ?? 0
    if (taken >= this.perSlot * this.runtime.concurrency(capability)) return undefined
    this.places.set(capability, taken + 1)
    let given = false
    const giveBack = (): void => {
      if (given) return
      given = true
      this.places.set(capability, (this.places.get(capability) ?? 1) - 1)
    }
    return {
      cancel: giveBack,
      wait: async lease => await new Promise<Slot | undefined>(resolve => {
        const key = lease.taskId
        const onAbort = (): void => { start(undefined) }
        const start = (slot: Slot | undefined): void => {
          if (this.waiting.get(key)?.start !== start) {
            slot?.release()
            return
          }
          this.waiting.delete(key)
          lease.signal.removeEventListener('abort', onAbort)
          giveBack()
          resolve(slot)
        }
        // one wait per task: a second lease of the same task here lets the first go
        this.waiting.get(key)?.start(undefined)
        this.waiting.set(key, { capability, start })
        if (lease.signal.aborted) start(undefined)
        else lease.signal.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  has (id: string): boolean {
    return this.waiting.has(id)
  }

  /** Lets a waiting task go, slotless (canceled, or waited too long). */
  letGo (id: string): void {
    this.waiting.get(id)?.start(undefined)
  }

  /** Gives the slots free now to waiting tasks, oldest first. */
  drain (): void {
    // called whenever a run ends: nothing to copy while nothing waits
    if (this.waiting.size === 0) return
    for (const w of [...this.waiting.values()]) {
      const slot = this.runtime.reserve(w.capability)
      if (slot !== undefined) w.start(slot)
    }
  }

  /** The node stops: every waiting task is let go, slotless. */
  clear (): void {
    for (const w of [...this.waiting.values()]) w.start(undefined)
  }
}
