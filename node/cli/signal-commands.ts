import { InvalidConfigError } from '../errors.js'
import { APPROVAL_PREFIX } from '../llm/approval.js'
import { apiRequest, resolveApiUrl, resolveTaskId } from './client.js'
import { clientOptions, jsonFlag } from './options.js'
import { json, line } from './output.js'
import type { ClientTarget } from './client.js'
import type { Command } from 'commander'

type Opts = ClientTarget & { json?: boolean }


async function signal (opts: Opts, given: string, name: string, data: unknown): Promise<void> {
  const api = await resolveApiUrl(opts)
  const id = await resolveTaskId(api, given)
  const answer = await apiRequest(api, 'POST', `/v1/tasks/${id}/signal`, { name, data })
  if (opts.json === true) return json(answer)
  line(`signal ${name} delivered; the task is ${String(answer.state)}`)
}

/** `agentmesh signal` and `agentmesh approve`: wake a task that waits (ctx.waitFor). */
export function addSignalCommands (program: Command): void {
  clientOptions(program.command('signal <id> <name>'), '--node-data')
    .description('delivers a signal to a task waiting for it (ctx.waitFor); 409 when it is not waiting for that name')
    .option('--data <json>', 'the signal\'s data, as JSON (default null)')
    .action(async (id: string, name: string, opts: Opts & { data?: string, nodeData?: string }) => {
      const data: unknown = jsonFlag('data', opts.data) ?? null
      await signal({ ...opts, data: opts.nodeData }, id, name, data)
    })

  clientOptions(program.command('approve <id>'))
    .description('approves (or with --reject refuses) the tool call a task waits on; without --call, the one it waits for now')
    .option('--call <callId>', 'the tool call to decide (see waitingFor in agentmesh task ID)')
    .option('--reject', 'refuse the call: the model is told it was refused, and why')
    .option('--reason <text>', 'why the call is refused, for the model (with --reject)')
    .action(async (given: string, opts: Opts & { call?: string, reject?: boolean, reason?: string }, cmd: Command) => {
      // the model is told a reason only when its call is refused: with an approval it went nowhere, unsaid
      if (opts.reason !== undefined && opts.reject !== true) cmd.error('error: --reason goes with --reject: the model is told why its call was refused, and an approval tells it nothing')
      const api = await resolveApiUrl(opts)
      const task = await apiRequest(api, 'GET', `/v1/tasks/${await resolveTaskId(api, given)}`)
      const waiting: string | undefined = task.waitingFor?.name
      let name: string
      if (opts.call === undefined) {
        if (waiting === undefined || !waiting.startsWith(APPROVAL_PREFIX)) throw new InvalidConfigError(`task ${given} waits for no approval now${waiting === undefined ? '' : ` (it waits for "${waiting}")`}`)
        name = waiting
      } else {
        // the model's call id names the call, also when the wait is step-qualified (approve:<step>.<id>)
        name = waiting !== undefined && waiting.startsWith(APPROVAL_PREFIX) && waiting.endsWith(`.${opts.call}`) ? waiting : `${APPROVAL_PREFIX}${opts.call}`
      }
      await signal(opts, given, name, { approved: opts.reject !== true, ...(opts.reason === undefined ? {} : { reason: opts.reason }) })
    })
}
