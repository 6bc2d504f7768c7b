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
