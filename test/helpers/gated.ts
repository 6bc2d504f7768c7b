import type { Agent } from '../../node/runtime/agent.js'

/**
 * An agent of capability `gated` whose runs all wait until the test calls `open`, then return
 * `result`: a task held running for as long as a test needs, without a timer.
 */
export function gatedAgent (result: unknown, concurrency = 8): { agent: Agent, open: () => void } {
  let open!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  return { agent: { name: 'gated', capabilities: ['gated'], concurrency, run: async () => { await opened; return result } }, open }
}

/**
 * A gate runs wait on until the test calls `open`, each wait ending early, with the signal's
 * reason, once its run is aborted (a run on a node that stops, say).
 */
export function abortableGate (): { open: () => void, wait: (signal: AbortSignal) => Promise<void> } {
  let open!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  const wait = async (signal: AbortSignal): Promise<void> => {
    const aborted = new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
    await Promise.race([opened, aborted])
  }
  return { open, wait }
}
