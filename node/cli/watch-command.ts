import { setTimeout as delay } from 'node:timers/promises'
import { InvalidConfigError } from '../errors.js'
import { resolveApiUrl, resolveTaskId } from './client.js'
import { describeEvent, followEvents } from './events-client.js'
import { clientOptions } from './options.js'
import { errorLine, line } from './output.js'
import type { ClientTarget } from './client.js'
import type { StreamEvent } from './events-client.js'
import type { Command } from 'commander'

type WatchOpts = ClientTarget & { json?: boolean, capability?: string, state?: string }

/** Connections to try in a row before giving up: a daemon restarting comes back within them. */
const RECONNECTS = 5
const RECONNECT_DELAY_MS = 1_000

/**
 * `agentmesh watch [ID]`: one task's events from its submit to its outcome (exit 0 when it
 * completed, 1 when it died or was canceled), or without ID the mesh's state changes until Ctrl-C.
 * A dropped stream is picked up again (a task's from its last event, by Last-Event-ID).
 */
export function addWatchCommand (program: Command): void {
  clientOptions(program.command('watch [id]'))
    .description('follow one task\'s events to its outcome, or (without ID) the mesh\'s task state changes')
    .option('--capability <name>', 'without ID: only tasks of this capability')
    .option('--state <state>', 'without ID: only changes to this state')
    .action(async (id: string | undefined, opts: WatchOpts, cmd: Command) => {
      // one task's stream is that task's whole: the filters were taken and ignored (a usage error, exit 2)
      if (id !== undefined && (opts.capability !== undefined || opts.state !== undefined)) cmd.error('error: --capability and --state filter the mesh\'s changes, without ID: one task\'s events come whole')
      const url = await resolveApiUrl(opts)
      let outcome: string | undefined
      let lastId: string | undefined
      const print = (e: StreamEvent): void => {
        if (['completed', 'dead', 'canceled'].includes(e.event)) outcome = e.event
        if (id !== undefined) lastId = e.id
        line(opts.json === true ? JSON.stringify(e) : describeEvent(e))
      }
      const stop = new AbortController()
      process.once('SIGINT', () => { stop.abort() })
      const q = new URLSearchParams()
      if (opts.capability !== undefined) q.set('capability', opts.capability)
      if (opts.state !== undefined) q.set('state', opts.state)
      const path = id === undefined ? `/v1/events?${q.toString()}` : `/v1/tasks/${await resolveTaskId(url, id)}/events`
      let failures = 0
      while (!stop.signal.aborted && outcome === undefined) {
        try {
          await followEvents(url, path, e => { failures = 0; print(e) }, stop.signal, lastId)
        } catch (err: any) {
          // a refusal (a bad id, a bad filter) will not get better; a 503 (a placement out of reach
          // for now) may, and is retried as a dropped stream is
          if ((err?.name === 'ApiRequestError' && err.status !== 503) || ++failures >= RECONNECTS) throw err
        }
        if (stop.signal.aborted || outcome !== undefined) break
        errorLine(`the stream ended before ${id === undefined ? 'Ctrl-C' : 'the task\'s outcome'}; reconnecting`)
        await delay(RECONNECT_DELAY_MS)
      }
      if (id !== undefined) process.exitCode = outcome === 'completed' ? 0 : 1
    })
}
