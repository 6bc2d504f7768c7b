/** What a submit answers for a task of an idempotency key. */
export interface KeyedAnswer { id: string, created: boolean, warning?: string }

interface Pending { promise: Promise<KeyedAnswer> }

/** The creator's handle: later submits of the key wait for its outcome. */
export interface Creation {
  settle: (answer: KeyedAnswer) => void
  fail: (err: unknown) => void
}

/**
 * Creations of idempotency keys' tasks under way on this node. A submit looks its key up, then
 * stores the task: two submits of one key at once both found nothing and both answered "created".
 * Now the first owns the creation and the others wait for its outcome and answer "not created".
 */
export class KeyCreations {
  private readonly pending = new Map<string, Pending>()

  /** The outcome of a creation of `id` under way here, if there is one. */
  earlier (id: string): Promise<KeyedAnswer> | undefined {
    return this.pending.get(id)?.promise
  }

  /**
   * The outcome of the creation of `id` under way, or else the creation itself, owned by the caller.
   * An earlier creation that failed (its request refused, say) leaves the key to the next one: it is
   * owned at once when free, so two waiters cannot both take it over.
   */
  async claim (id: string): Promise<{ answer: KeyedAnswer } | { owned: Creation }> {
    for (;;) {
      const earlier = this.earlier(id)
      if (earlier === undefined) return { owned: this.own(id) }
      try {
        return { answer: await earlier }
      } catch {}
    }
  }

  /** Makes the caller the creator of `id`, until it settles or fails (the first call of either counts). */
  own (id: string): Creation {
    let resolve!: (answer: KeyedAnswer) => void
    let reject!: (err: unknown) => void
    const promise = new Promise<KeyedAnswer>((res, rej) => { resolve = res; reject = rej })
    // nobody may be waiting for it
    promise.catch(() => {})
    const entry = { promise }
    this.pending.set(id, entry)
    const done = (): void => { if (this.pending.get(id) === entry) this.pending.delete(id) }
    return {
      settle: answer => { done(); resolve(answer) },
      fail: err => { done(); reject(err) }
    }
  }
}
