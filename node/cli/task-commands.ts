import { readFile } from 'node:fs/promises'
import { setTimeout as delay } from 'node:timers/promises'
import { InvalidConfigError } from '../errors.js'
import { withoutBom } from '../text-files.js'
import { MAX_BULK_TASKS } from '../tasks/bulk-limits.js'
import { apiRequest, resolveApiUrl, resolveTaskId } from './client.js'
import { clean, describeEvent, followEvents, tokenOf } from './events-client.js'
import { clientOptions, finiteJson, positiveWholeNumber, wholeNumber } from './options.js'
import { ago, forPeople, json, line, shortId, shortPeer, table } from './output.js'
import type { ClientTarget } from './client.js'
import type { Command } from 'commander'

type ClientOpts = ClientTarget & { json?: boolean }



/** `--input JSON` or `--input @FILE`; a file that is not JSON is taken as one string (a text). */
export async function readInput (value: string): Promise<unknown> {
  if (value.startsWith('@')) {
    const path = value.slice(1)
    if (path === '') throw new InvalidConfigError('--input @ needs a file name after the @ (--input @book.txt)')
    let text: string
    try {
      text = withoutBom(await readFile(path, 'utf8'))
    } catch (err: any) {
      throw new InvalidConfigError(`cannot read input file ${path}: ${err.code ?? err.message}`)
    }
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { return text }
    return finiteJson(`input file ${path}`, parsed)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch (err: any) {
    throw new InvalidConfigError(`--input is not valid JSON (${err.message}); quote strings, e.g. '"hello"', or use @FILE`)
  }
  return finiteJson('--input', parsed)
}


/** After the result, how long `submit --wait` lets the event stream print what it still has. */
const FOLLOW_GRACE_MS = 3_000

/** A bulk file's tasks are sent in requests of at most MAX_BULK_TASKS tasks and about this many bytes (the API takes 2 MiB). */
const BULK_REQUEST_BYTES = 1024 * 1024

/** A bulk file's tasks, and where each came from ("line 12" of JSON Lines, "task 12" of an array): what an error line names. */
export interface BulkFile { tasks: unknown[], where: string[] }

/** A bulk file (or stdin for `-`): a JSON array, or JSON Lines with one task a line. */
export async function readBulkFile (file: string): Promise<BulkFile> {
  let text: string
  try {
    if (file === '-') {
      const chunks: Buffer[] = []
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
      text = withoutBom(Buffer.concat(chunks).toString('utf8'))
    } else {
      text = withoutBom(await readFile(file, 'utf8'))
    }
  } catch (err: any) {
    throw new InvalidConfigError(`cannot read bulk file ${file}: ${err.code ?? err.message}`)
  }
  const name = file === '-' ? 'stdin' : file
  let tasks: unknown[]
  let where: string[]
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch (err: any) { throw new InvalidConfigError(`${name} is not a valid JSON array (${err.message})`) }
    tasks = parsed as unknown[]
    where = tasks.map((_, i) => `task ${i + 1}`)
  } else {
    tasks = []
    where = []
    for (const [i, l] of text.split('\n').entries()) {
      // blank lines are skipped: the output's lines then no longer match the file's, so errors name theirs
      if (l.trim() === '') continue
      try { tasks.push(JSON.parse(l)) } catch (err: any) { throw new InvalidConfigError(`${name} line ${i + 1} is not JSON (${err.message}); give a JSON array or one JSON task a line`) }
      where.push(`line ${i + 1}`)
    }
  }
  if (tasks.length === 0) throw new InvalidConfigError(`${name} holds no tasks`)
  tasks.forEach((t, i) => finiteJson(`${name} ${where[i] ?? ''}`, t))
  return { tasks, where }
}

/** Times `submit --bulk` sends a batch an overloaded node refused (429), waiting its Retry-After (at most 60 s) between. */
const BULK_OVERLOAD_TRIES = 5

/**
 * `submit --bulk`: the file's tasks in as few requests as the API's limits allow. A request refused
 * as a whole (a node without a majority, a body too large, an overload past BULK_OVERLOAD_TRIES)
 * becomes that error for each of its tasks.
 */
async function submitBulk (opts: ClientOpts, file: string): Promise<void> {
  const { tasks, where } = await readBulkFile(file)
  const url = await resolveApiUrl(opts)
  const batches: unknown[][] = [[]]
  let size = 0
  for (const task of tasks) {
    const bytes = Buffer.byteLength(JSON.stringify(task) ?? '') + 1
    const last = batches.at(-1) as unknown[]
    if (last.length > 0 && (last.length >= MAX_BULK_TASKS || size + bytes > BULK_REQUEST_BYTES)) {
      batches.push([])
      size = 0
    }
    (batches.at(-1) as unknown[]).push(task)
    size += bytes
  }
  const answers: any[] = []
  for (const [b, batch] of batches.entries()) {
    let unreachable: string | undefined
    for (let tries = 1; ; tries++) {
      try {
        answers.push(...(await apiRequest(url, 'POST', '/v1/tasks', batch, 120_000)).tasks)
        break
      } catch (err: any) {
        // the node went (stopped, killed): the ids it answered are printed; this batch may be stored
        // in part, so it and the rest are reported as not known to be submitted, not sent again
        if (err?.name === 'NodeNotRunningError') {
          // no node there from the start: one line says so, not one a task
          if (b === 0) throw err
          unreachable = err.message
          break
        }
        if (err?.name !== 'ApiRequestError') throw err
        // an overloaded node refuses the whole batch and says when to come back: the batch is sent again then
        if (err.status === 429 && tries < BULK_OVERLOAD_TRIES) {
          await new Promise(resolve => setTimeout(resolve, Math.min(err.retryAfterMs ?? 1_000, 60_000)))
          continue
        }
        answers.push(...batch.map(() => ({ error: { name: 'REQUEST_FAILED', message: err.message } })))
        break
      }
    }
    if (unreachable !== undefined) {
      const gone = `${unreachable.replace(/; is the daemon running\?$/, '')}: not known to be submitted`
      // a task the node stored may still run: only a key makes sending it again safe
      const message = (task: unknown): string => typeof (task as { idempotencyKey?: unknown })?.idempotencyKey === 'string'
        ? `${gone} (sending it again with its idempotency key to this same node is safe; a key sent to another node makes another task)`
        : `${gone}, and it may still run (it has no idempotency key: sent again, it may run twice)`
      answers.push(...batches.slice(b).flat().map(task => ({ error: { name: 'NODE_UNREACHABLE', message: message(task) } })))
      break
    }
  }
  const failed = answers.filter(a => a.error !== undefined).length
  if (failed > 0) process.exitCode = 1
  if (opts.json === true) return json({ tasks: answers })
  // the API names an item by its place in its request (tasks[N], before each of its problems); a line here names its place in the file
  // a refused task that a member may still run names its id last
  answers.forEach((a, i) => { line(a.error === undefined ? a.id : `error: ${where[i] as string}: ${String(a.error.message).replace(/(^|; )tasks\[\d+\](?:\.|: )/g, '$1')}${a.id === undefined ? '' : ` (task ${String(a.id)})`}`) })
  // once each, not once a task: a thousand tasks of a capability nobody offers would say it a thousand times
  for (const warning of new Set(answers.map(a => a.warning).filter(w => w !== undefined))) process.stderr.write(`agentmesh: warning: ${String(warning)}\n`)
  if (failed > 0) process.stderr.write(`agentmesh: ${failed} of ${answers.length} tasks not submitted\n`)
}

export function addTaskCommands (program: Command): void {
  clientOptions(program.command('submit'))
    .description('submit a task to the mesh (or many, with --bulk)')
    .option('--capability <name>', 'what the task needs, e.g. echo, text.wordcount, mapreduce (required without --bulk)')
    .option('--input <json|@file>', 'the task input: JSON, or @FILE (JSON, or a text file taken as one string) (required without --bulk)')
    .option('--bulk <file>', 'submit many tasks: FILE (or - for stdin) is a JSON array or JSON Lines of {capability, input, idempotencyKey?, maxAttempts?, timeoutMs?, deadlineMs?}; prints one line per task, its id or "error: line N: ...", and exits 1 if any failed')
    .option('--wait', 'wait for the result and print it')
    .option('--timeout <ms>', 'with --wait: the longest wait (default: until the task ends)', wholeNumber('--timeout'))
    .option('--idempotency-key <key>', 'the same key from the same node gives the same task')
    .option('--max-attempts <n>', 'attempts before the task goes dead (default 3)', positiveWholeNumber('--max-attempts'))
    .option('--task-timeout <ms>', 'per-attempt time limit (default 60000)', positiveWholeNumber('--task-timeout'))
    .option('--require-peer', 'refuse (exit 1) instead of waiting when no live peer offers the capability')
    .action(async (opts: ClientOpts & { capability?: string, input?: string, bulk?: string, wait?: boolean, timeout?: number, idempotencyKey?: string, maxAttempts?: number, taskTimeout?: number, requirePeer?: boolean }, cmd: Command) => {
      if (opts.bulk !== undefined) {
        const others = (['capability', 'input', 'wait', 'timeout', 'idempotencyKey', 'maxAttempts', 'taskTimeout', 'requirePeer'] as const).filter(k => opts[k] !== undefined)
        if (others.length > 0) cmd.error(`error: --bulk takes the tasks' fields from its file, not --${others.map(k => k.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)).join(', --')}`)
        return submitBulk(opts, opts.bulk)
      }
      if (opts.timeout !== undefined && opts.wait !== true) cmd.error('error: --timeout is the longest --wait: give --wait too (--task-timeout limits each attempt)')
      if (opts.capability === undefined) cmd.error("error: required option '--capability <name>' not specified (or --bulk FILE)")
      if (opts.input === undefined) cmd.error("error: required option '--input <json|@file>' not specified (or --bulk FILE)")
      const url = await resolveApiUrl(opts)
      const body = {
        capability: opts.capability,
        input: await readInput(opts.input as string),
        ...(opts.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }),
        ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
        ...(opts.taskTimeout === undefined ? {} : { timeoutMs: opts.taskTimeout }),
        ...(opts.requirePeer === true ? { requirePeer: true } : {})
      }
      const submitted = await apiRequest(url, 'POST', '/v1/tasks', body)
      if (submitted.warning !== undefined) process.stderr.write(`agentmesh: warning: ${submitted.warning}\n`)
      if (opts.wait !== true) return opts.json === true ? json(submitted) : line(submitted.id)
      const deadline = opts.timeout === undefined ? Infinity : Date.now() + opts.timeout
      // on a terminal the task's progress and streamed tokens show as they come (stderr: stdout keeps the result)
      const following = new AbortController()
      let followed: Promise<void> = Promise.resolve()
      /** streamed tokens written since the last line end: the next line starts on a line of its own */
      let midLine = false
      const endLine = (): void => { if (midLine) process.stderr.write('\n'); midLine = false }
      if (process.stderr.isTTY === true && opts.json !== true) {
        followed = followEvents(url, `/v1/tasks/${String(submitted.id)}/events`, e => {
          const token = tokenOf(e)
          if (token !== undefined) {
            process.stderr.write(token)
            if (token !== '') midLine = !token.endsWith('\n')
          } else if (e.event !== 'completed') {
            endLine()
            process.stderr.write(`${describeEvent(e)}\n`)
          }
        }, following.signal).catch(() => {})
      }
      let answer: any
      // completed, but the result had not reached the node when the wait ended (a 202): not done yet
      const done = (a: any): boolean => ['completed', 'failed', 'dead', 'canceled'].includes(a.state) && (a.state !== 'completed' || 'result' in a)
      try {
        do {
          const wait = Math.max(0, Math.min(30_000, deadline - Date.now()))
          answer = await apiRequest(url, 'GET', `/v1/tasks/${submitted.id}/result?wait=${wait}`, undefined, wait + 30_000)
        } while (!done(answer) && Date.now() < deadline)
      } catch (err: any) {
        following.abort()
        endLine()
        // the task was stored on a majority and runs on without this node: its id is how to find it
        if (err?.name === 'NodeNotRunningError' || (err?.name === 'ApiRequestError' && err.status >= 500)) err.message = `task ${String(submitted.id)} was submitted, and the wait for it failed: ${String(err.message)}; it runs on in the mesh: ask another node with agentmesh task ${String(submitted.id)}`
        throw err
      }
      // the stream ends by itself after the outcome: its last events are let through, briefly
      await Promise.race([followed, delay(FOLLOW_GRACE_MS, undefined, { ref: false })])
      following.abort()
      // the result (stdout) and what follows start on their own line, not after the last token
      endLine()
      const completed = answer.state === 'completed' && done(answer)
      if (opts.json === true) json(answer)
      else if (completed) json(answer.result)
      if (completed) return
      const last = answer.lastError === undefined || String(answer.error ?? '').includes(String(answer.lastError)) ? '' : ` (last error: ${clean(answer.lastError)})`
      const state = answer.state === 'completed' ? 'completed, its result not on this node yet' : answer.state
      if (opts.json !== true) process.stderr.write(`agentmesh: task ${submitted.id} ${state}${answer.error === undefined ? '' : `: ${clean(answer.error)}`}${last}\n`)
      process.exitCode = ['failed', 'dead', 'canceled'].includes(answer.state) ? 1 : 3
    })

  clientOptions(program.command('task <id>'))
    .description('state, attempts, executor and result of one task')
    .option('--force-placement', 'move a blocked task to live peers without a majority of its old placement: if the unreachable members are alive (a partition, not a loss) the task may run to two results; logged by the node')
    .action(async (given: string, opts: ClientOpts & { forcePlacement?: boolean }) => {
      const url = await resolveApiUrl(opts)
      const id = await resolveTaskId(url, given)
      if (opts.forcePlacement === true) {
        const answer = await apiRequest(url, 'POST', `/v1/tasks/${encodeURIComponent(id)}/force-placement`)
        if (opts.json !== true) process.stderr.write(`agentmesh: forced task ${id} onto epoch ${String(answer.placement?.epoch)}: ${String(answer.warning)}\n`)
        return json(answer)
      }
      json(await apiRequest(url, 'GET', `/v1/tasks/${encodeURIComponent(id)}`))
    })

  clientOptions(program.command('tasks'))
    .description('tasks this node knows of, newest first')
    .option('--state <state>', 'pending, running, waiting, completed, failed, canceled, dead or blocked')
    .option('--capability <name>')
    .option('--limit <n>', 'at most this many (1-10000, default 100)', positiveWholeNumber('--limit'))
    .option('--parent <id>', 'the subtasks of a task, as a tree (from its trace)')
    .action(async (opts: ClientOpts & { state?: string, capability?: string, limit?: number, parent?: string }, cmd: Command) => {
      // the tree comes whole, from the trace: the filters were taken and ignored (a usage error, exit 2)
      if (opts.parent !== undefined && (opts.state !== undefined || opts.capability !== undefined || opts.limit !== undefined)) cmd.error('error: --parent shows a task\'s whole tree: it takes no --state, --capability or --limit')
      const url = await resolveApiUrl(opts)
      const people = forPeople()
      // one row per task: a short id and a relative time for people, the full ones for programs
      const row = (t: any, prefix = ''): string[] => [
        `${prefix}${people ? shortId(String(t.id)) : String(t.id)}`, t.capability, t.state, `${String(t.attempts)}/${String(t.maxAttempts)}`, t.executor === undefined ? '-' : shortPeer(String(t.executor)), people ? ago(t.createdAt) : new Date(t.createdAt).toISOString()
      ]
      if (opts.parent !== undefined) {
        const trace = await apiRequest(url, 'GET', `/v1/tasks/${await resolveTaskId(url, opts.parent)}/trace`)
        if (opts.json === true) return json({ tasks: trace.tasks })
        return table(['TASK', 'CAPABILITY', 'STATE', 'ATTEMPTS', 'EXECUTOR', 'CREATED'], trace.tasks.map((t: any) => row(t, `${'  '.repeat(t.depth as number)}${t.depth === 0 ? '' : '└ '}`)))
      }
      const q = new URLSearchParams()
      if (opts.state !== undefined) q.set('state', opts.state)
      if (opts.capability !== undefined) q.set('capability', opts.capability)
      if (opts.limit !== undefined) q.set('limit', String(opts.limit))
      const { tasks } = await apiRequest(url, 'GET', `/v1/tasks?${q.toString()}`)
      if (opts.json === true) return json({ tasks })
      table(['ID', 'CAPABILITY', 'STATE', 'ATTEMPTS', 'EXECUTOR', 'CREATED'], tasks.map((t: any) => row(t)))
    })

  clientOptions(program.command('cancel <id>'))
    .description('cancel a task: its holder is aborted and it is never retried')
    .action(async (given: string, opts: ClientOpts) => {
      const url = await resolveApiUrl(opts)
      const answer = await apiRequest(url, 'POST', `/v1/tasks/${await resolveTaskId(url, given)}/cancel`)
      return opts.json === true ? json(answer) : line(`${String(answer.id)} ${String(answer.state)}`)
    })

  // the client options also before the subcommand (`dlq --data ./a list`), as every client command takes them
  const dlq = clientOptions(program.command('dlq').description('the dead-letter list: tasks that ran out of attempts or deadline'))
  clientOptions(dlq.command('list'))
    .description('dead tasks, newest first')
    .option('--limit <n>', 'at most this many (1-10000, default 1000)', positiveWholeNumber('--limit'))
    .action(async (_opts: ClientOpts, cmd: Command) => {
      const opts: ClientOpts & { limit?: number } = cmd.optsWithGlobals()
      const q = new URLSearchParams()
      if (opts.limit !== undefined) q.set('limit', String(opts.limit))
      const { deadLetters } = await apiRequest(await resolveApiUrl(opts), 'GET', `/v1/deadletter?${q.toString()}`)
      if (opts.json === true) return json({ deadLetters })
      table(['ID', 'CAPABILITY', 'ATTEMPTS', 'REASON'], deadLetters.map((d: any) => [d.id, d.capability, String(d.attempts), String(d.reason ?? '')]))
    })
  clientOptions(dlq.command('redrive <id>'))
    .description('run a dead task again, with a new attempt budget')
    .action(async (given: string, _opts: ClientOpts, cmd: Command) => {
      const opts: ClientOpts = cmd.optsWithGlobals()
      const url = await resolveApiUrl(opts)
      const answer = await apiRequest(url, 'POST', `/v1/deadletter/${await resolveTaskId(url, given)}/redrive`)
      return opts.json === true ? json(answer) : line(`${String(answer.id)} ${String(answer.state)}`)
    })
  clientOptions(dlq.command('drop <id>'))
    .description('remove a dead task from the list')
    .action(async (given: string, _opts: ClientOpts, cmd: Command) => {
      const opts: ClientOpts = cmd.optsWithGlobals()
      const url = await resolveApiUrl(opts)
      const answer = await apiRequest(url, 'DELETE', `/v1/deadletter/${await resolveTaskId(url, given)}`)
      return opts.json === true ? json(answer) : line(`${String(answer.id)} dropped`)
    })
}
