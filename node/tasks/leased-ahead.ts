import type { HeldLease } from '../../protocols/lease/index.js'
import type { AgentRuntime, Slot } from '../runtime/runtime.js'

/** A place taken in the queue before the lease is asked for: given up, or waited in with the lease. */
export interface AheadTicket {
  /** Resolves with a slot once one frees, or undefined when the lease ends first or the node stops. */
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
 * and no other member had one free: one request per member, where storing the task and claiming it
 * later is two. They wait here, their leases renewing, and take slots as they free, oldest first
 * and before queued offers (they already hold leases). At most `perSlot` times the agent's
 * concurrency wait per capability, so a slow agent does not hoard tasks that peers freed later
 * could run.
 */
export class LeasedAhead {
  /** in the order they came: a Map iterates in insertion order */
  private readonly waiting = new Map<object, Waiting>()
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
        const key = {}
        const onAbort = (): void => { start(undefined) }
        const start = (slot: Slot | undefined): void => {
          if (!this.waiting.delete(key)) return
          lease.signal.removeEventListener('abort', onAbort)
          giveBack()
          resolve(slot)
        }
        this.waiting.set(key, { capability, start })
        if (lease.signal.aborted) start(undefined)
        else lease.signal.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  /** Gives the slots free now to waiting tasks, oldest first. */
  drain (): void {
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
