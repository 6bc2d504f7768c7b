import { resolveApiUrl, resolveTaskId } from './client.js'
import { describeEvent, followEvents } from './events-client.js'
import { clientOptions } from './options.js'
import { line } from './output.js'
import type { ClientTarget } from './client.js'
import type { Command } from 'commander'

type WatchOpts = ClientTarget & { json?: boolean, capability?: string, state?: string }

/**
 * `agentmesh watch [ID]`: one task's events from its submit to its outcome (exit 0 when it
 * completed, 1 when it died or was canceled), or without ID the mesh's state changes until Ctrl-C.
 */
export function addWatchCommand (program: Command): void {
  clientOptions(program.command('watch [id]'))
    .description('follow one task\'s events to its outcome, or (without ID) the mesh\'s task state changes')
    .option('--capability <name>', 'without ID: only tasks of this capability')
    .option('--state <state>', 'without ID: only changes to this state')
    .action(async (id: string | undefined, opts: WatchOpts) => {
      const url = await resolveApiUrl(opts)
      let outcome: string | undefined
      const print = (e: { id?: string, event: string, data: any }): void => {
        if (['completed', 'dead', 'canceled'].includes(e.event)) outcome = e.event
        line(opts.json === true ? JSON.stringify(e) : describeEvent(e))
      }
      if (id === undefined) {
        const q = new URLSearchParams()
        if (opts.capability !== undefined) q.set('capability', opts.capability)
        if (opts.state !== undefined) q.set('state', opts.state)
        const stop = new AbortController()
        process.once('SIGINT', () => { stop.abort() })
        await followEvents(url, `/v1/events?${q.toString()}`, print, stop.signal)
        return
      }
      await followEvents(url, `/v1/tasks/${await resolveTaskId(url, id)}/events`, print)
      process.exitCode = outcome === 'completed' ? 0 : 1
    })
}
