/** Why an alarm rang: a wake of its task, or its time up (its signal aborted, the service stopped). */
export type Ring = 'woken' | 'timeout'

/**
 * One wait's alarm: `ring(ms)` resolves 'woken' on a wake (at once if one came since arming), and
 * 'timeout' after `ms`, once `signal` aborts or when the service stops (counted in `stops`).
 */
export interface Alarm {
  ring: (ms: number, signal?: AbortSignal) => Promise<Ring>
  cancel: () => void
}

/**
 * Who waits on which task, and waking them: a notice, a local commit or the service stopping.
 * Armed before a read, so a wake that comes while the read is on its way is kept, not lost.
 */
export class WakeList {
  private readonly waiters = new Map<string, Set<(why: Ring) => void>>()
  /** how many times the service stopped: a wait sees its stop here, rung or between two alarms */
  stops = 0

  /** Listens for a wake of `id` from now on; one ring per alarm. */
  arm (id: string): Alarm {
    const set = this.waiters.get(id) ?? new Set()
    this.waiters.set(id, set)
    let heard: Ring | undefined
    let deliver: ((why: Ring) => void) | undefined
    const cancel = (): void => {
      set.delete(wake)
      if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id)
    }
    const wake = (why: Ring): void => {
      cancel()
      if (deliver !== undefined) deliver(why)
      else heard = why
    }
    set.add(wake)
    return {
      ring: async (ms, signal) => {
        if (heard !== undefined) return heard
        if (signal?.aborted === true) {
          cancel()
          return 'timeout'
        }
        return new Promise<Ring>(resolve => {
          const stop = (): void => { cancel(); done('timeout') }
          const timer = setTimeout(stop, ms)
          signal?.addEventListener('abort', stop, { once: true })
          const done = (why: Ring): void => {
            clearTimeout(timer)
            signal?.removeEventListener('abort', stop)
            resolve(why)
          }
          deliver = done
        })
      },
      cancel
    }
  }

  /** Wakes every wait on `id`, as by a notice. */
  wake (id: string): void {
    for (const wake of this.waiters.get(id) ?? []) wake('woken')
  }

  /** Rings every alarm and counts a stop: the service stops, and the waits under way end. */
  clear (): void {
    this.stops++
    for (const set of this.waiters.values()) for (const wake of set) wake('timeout')
    this.waiters.clear()
  }
}
