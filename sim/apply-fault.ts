import type { Cluster } from './cluster.js'
import type { FaultTrace } from './report.js'
import type { Rng } from './rng.js'
import type { Fault } from './scenario.js'

/* One fault of a scenario, applied to a running cluster: the simulator's runner calls it at the fault's time. */

/**
 * Nodes a crash fault took down (from the moment it began), each with whether its restart is
 * scheduled, and nodes paused now (they come back by themselves; a cluster of processes does not
 * count them live).
 */
export interface FaultedNodes { down: Map<number, { dueBack: boolean }>, paused: Set<number> }

/** Runs `fn` after `ms`, as part of the run: the run's end waits for it (a restart, a heal). */
export type After = (ms: number, fn: () => unknown) => void

/** Applies one fault; `elapsed` restamps the trace when the fault waited for its node (a holder). */
export async function applyFault (cluster: Cluster, fault: Fault, rng: Rng, trace: FaultTrace, timers: { after: After, endsIn: (ms: number, elapsedMs: number) => void, faulted: FaultedNodes }, elapsed: () => number): Promise<void> {
  const { after } = timers
  // a holder fault that found none says so: it hit a node that held nothing
  let instead = ''
  const pick = async (ref: number | 'random' | 'holder'): Promise<number | undefined> => {
    // a named node that is down already (crashed before, not back yet) is skipped: "killed" again, it was not
    if (typeof ref === 'number') return cluster.live().includes(ref) ? ref : undefined
    if (ref === 'holder') {
      // a node running a task, if one turns up within a few seconds
      const until = Date.now() + 3_000
      while (Date.now() < until) {
        // one look is bounded by the time left too: a look at busy daemons (their metrics over
        // HTTP) took seconds, and a pause due at 2 s fired at 10.9 s
        const busy = await Promise.race([cluster.busyNode(), new Promise<undefined>(resolve => setTimeout(resolve, Math.max(0, until - Date.now())))])
        if (busy !== undefined) return busy
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      instead = ' (no node held a task within 3 s: a random live one instead)'
    }
    // none when every node is down (one crashed before, not yet back): the fault is skipped, and says so
    const live = cluster.live()
    return live.length === 0 ? undefined : live[rng.int(0, live.length)]
  }
  const skipped = (): void => {
    trace.skipped = true
    trace.detail = 'node' in fault && typeof fault.node === 'number' ? `skipped: node ${fault.node} is down already` : `skipped: no live node to ${fault.kind}`
  }
  switch (fault.kind) {
    case 'crash': {
      const i = await pick(fault.node)
      if (i === undefined) return skipped()
      // killed for good, the last live node with none due back would leave nothing to finish the
      // work: the run waited out its drain and failed with no node up (which one that is depends on
      // timing, a holder fault's search among it: the scenario check cannot tell beforehand)
      const { down, paused } = timers.faulted
      const othersUp = [...new Set([...cluster.live(), ...paused])].filter(n => n !== i && !down.has(n))
      if (fault.restartAfterMs === undefined && othersUp.length === 0 && ![...down.values()].some(d => d.dueBack)) {
        trace.skipped = true
        trace.detail = `skipped: node ${i} is the last live node and none is due back, so killed for good it would leave no node to finish the work`
        return
      }
      // recovery counts from the kill, not from when the fault began looking for a holder
      trace.at = elapsed()
      trace.node = i
      trace.detail = `node ${i} killed${fault.restartAfterMs === undefined ? '' : `, back after ${fault.restartAfterMs} ms`}${instead}`
      trace.durationMs = fault.restartAfterMs
      down.set(i, { dueBack: fault.restartAfterMs !== undefined })
      try {
        await cluster.crash(i)
      } catch (err) {
        // not down after all: a later crash must not take it for so
        down.delete(i)
        throw err
      }
      if (fault.restartAfterMs !== undefined) {
        after(fault.restartAfterMs, async () => {
          try {
            await cluster.restart(i)
          } finally {
            down.delete(i)
          }
        })
      }
      return
    }
    case 'pause': {
      const i = await pick(fault.node)
      if (i === undefined) return skipped()
      trace.at = elapsed()
      trace.node = i
      trace.detail = `node ${i} paused for ${fault.durationMs} ms${instead}`
      trace.durationMs = fault.durationMs
      // the cluster's own timer ends it, started before its pause returns
      timers.faulted.paused.add(i)
      after(fault.durationMs, () => { timers.faulted.paused.delete(i) })
      await cluster.pause(i, fault.durationMs)
      timers.endsIn(fault.durationMs, elapsed())
      return
    }
    case 'partition':
      trace.detail = `split ${fault.groups.map(g => `[${g.join(',')}]`).join(' | ')} for ${fault.durationMs} ms`
      trace.durationMs = fault.durationMs
      await cluster.partition(fault.groups, fault.durationMs)
      timers.endsIn(fault.durationMs, elapsed())
      return
    case 'loss':
      trace.detail = `${Math.round(fault.fraction * 100)}% of gossip dropped for ${fault.durationMs} ms`
      trace.durationMs = fault.durationMs
      cluster.setLoss(fault.fraction)
      after(fault.durationMs, () => { cluster.setLoss(0) })
      return
    case 'churn': {
      trace.detail = `a node leaves and one joins every ${fault.everyMs} ms for ${fault.durationMs} ms`
      trace.durationMs = fault.durationMs
      const end = Date.now() + fault.durationMs
      while (Date.now() < end) {
        const live = cluster.live().filter(i => i !== 0)
        if (live.length > 1) await cluster.removeNode(live[rng.int(0, live.length)] as number)
        await cluster.addNode()
        await new Promise(resolve => setTimeout(resolve, fault.everyMs))
      }
      return
    }
    case 'flood': {
      const sent = await cluster.flood(fault.messages)
      trace.detail = `${sent} garbage messages published`
    }
  }
}
