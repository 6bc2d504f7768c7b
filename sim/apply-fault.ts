import type { Cluster } from './cluster.js'
import type { FaultTrace } from './report.js'
import type { Rng } from './rng.js'
import type { Fault } from './scenario.js'

/* One fault of a scenario, applied to a running cluster: the simulator's runner calls it at the fault's time. */

/** Runs `fn` after `ms`, as part of the run: the run's end waits for it (a restart, a heal). */
export type After = (ms: number, fn: () => unknown) => void

/** Applies one fault; `elapsed` restamps the trace when the fault waited for its node (a holder). */
export async function applyFault (cluster: Cluster, fault: Fault, rng: Rng, trace: FaultTrace, timers: { after: After, endsIn: (ms: number, elapsedMs: number) => void }, elapsed: () => number): Promise<void> {
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
      // recovery counts from the kill, not from when the fault began looking for a holder
      trace.at = elapsed()
      trace.node = i
      trace.detail = `node ${i} killed${fault.restartAfterMs === undefined ? '' : `, back after ${fault.restartAfterMs} ms`}${instead}`
      trace.durationMs = fault.restartAfterMs
      await cluster.crash(i)
      if (fault.restartAfterMs !== undefined) after(fault.restartAfterMs, async () => cluster.restart(i))
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
