import type { TaskLayerInit } from '../../node/tasks/options.js'

/** Short timers for tests: a 500 ms lease, quick presence, pulls and sweeps. */
export const FAST_TASKS: TaskLayerInit = {
  leaseMs: 500,
  presenceIntervalMs: 150,
  pullIntervalMs: 250,
  pullIntervalCapMs: 1_000,
  pullMinAgeMs: 200,
  sweepIntervalMs: 100,
  reannounceBaseMs: 300,
  reannounceCapMs: 2_000,
  backoffBaseMs: 50,
  backoffCapMs: 400,
  claimStaggerMs: 50,
  claimRetryBaseMs: 50,
  rpcTimeoutMs: 2_000,
  antiEntropyMinAgeMs: 300,
  syncWrites: false
}
