/**
 * One wait's alarm: `ring(ms)` resolves true on a wake (at once if one came since arming), false
 * after `ms` or once `signal` aborts.
 */
export interface Alarm {
  ring: (ms: number, signal?: AbortSignal) => Promise<boolean>
  cancel: () => void
}

/**
 * Who waits on which task, and waking them: a notice, a local commit or the service stopping.
 * Armed before a read, so a wake that comes while the read is on its way is kept, not lost.
 */
export class WakeList {
  private readonly waiters = new Map<string, Set<(byNotice: boolean) => void>>()

  /** Listens for a wake of `id` from now on; one ring per alarm. */
  arm (id: string): Alarm {
    const set = this.waiters.get(id) ?? new Set()
    this.waiters.set(id, set)
    let heard: boolean | undefined
    let deliver: ((byNotice: boolean) => void) | undefined
    const cancel = (): void => {
      set.delete(wake)
      if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id)
    }
    const wake = (byNotice: boolean): void => {
      cancel()
      if (deliver !== undefined) deliver(byNotice)
      else heard = byNotice
    }
    set.add(wake)
    return {
      ring: async (ms, signal) => {
        if (heard !== undefined) return heard
        if (signal?.aborted === true) return false
        return new Promise<boolean>(resolve => {
          const stop = (): void => { cancel(); done(false) }
          const timer = setTimeout(stop, ms)
          signal?.addEventListener('abort', stop, { once: true })
          const done = (byNotice: boolean): void => {
            clearTimeout(timer)
            signal?.removeEventListener('abort', stop)
            resolve(byNotice)
          }
          deliver = done
        })
      },
      cancel
    }
  }

  /** Wakes every wait on `id`, as by a notice. */
  wake (id: string): void {
    for (const wake of this.waiters.get(id) ?? []) wake(true)
  }

  /** Rings every alarm as timed out (false): the service stops. */
  clear (): void {
    for (const set of this.waiters.values()) for (const wake of set) wake(false)
    this.waiters.clear()
  }
}
