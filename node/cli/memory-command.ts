import { apiRequest, resolveApiUrl } from './client.js'
import { clientOptions, jsonFlag, positiveWholeNumber } from './options.js'
import { errorLine, json, line, table } from './output.js'
import type { ClientTarget } from './client.js'
import type { Command } from 'commander'

type Opts = ClientTarget & { json?: boolean }

const path = (collection: string, rest = ''): string => `/v1/memory/${encodeURIComponent(collection)}${rest}`

/** `agentmesh memory put|search|rm`: vector memory through the control API. */
export function addMemoryCommand (program: Command): void {
  // the client options also before the subcommand (`memory --data ./a put ...`), as `dlq` takes them
  const memory = clientOptions(program.command('memory').description('vector memory shared by the mesh: put, search and rm records of a collection'))

  clientOptions(memory.command('put <collection> <id>'))
    .description('stores a record on a majority of its placement: a text (embedded by the node\'s --embeddings-model) and/or a vector')
    .option('--text <text>', 'the record\'s text')
    .option('--vector <json>', 'the vector, a JSON array of numbers')
    .option('--metadata <json>', 'a JSON object of strings, numbers and booleans, for search filters')
    .action(async (collection: string, id: string, _opts: unknown, cmd: Command) => {
      const opts: Opts & { text?: string, vector?: string, metadata?: string } = cmd.optsWithGlobals()
      const body = { id, text: opts.text, vector: jsonFlag('vector', opts.vector), metadata: jsonFlag('metadata', opts.metadata) }
      const answer = await apiRequest(await resolveApiUrl(opts), 'POST', path(collection), body)
      if (opts.json === true) return json(answer)
      for (const r of answer.records) line(`stored ${r.id} in ${collection} on ${r.replicas} replicas`)
    })

  clientOptions(memory.command('search <collection> [text]'))
    .description('the records nearest to a text (or --vector), merged from every live peer')
    .option('--vector <json>', 'search by a vector instead of a text')
    .option('-k, --k <n>', 'how many records (1-100, default 10)', positiveWholeNumber('-k'))
    .option('--filter <json>', 'metadata that must match, e.g. \'{"topic":"cats"}\'')
    .action(async (collection: string, text: string | undefined, _opts: unknown, cmd: Command) => {
      const opts: Opts & { vector?: string, k?: number, filter?: string } = cmd.optsWithGlobals()
      // one or the other: a usage error (exit 2), caught before the request
      if ((text === undefined) === (opts.vector === undefined)) cmd.error(`error: search by a text or by --vector: ${text === undefined ? 'give one' : 'not both'}`)
      const body = { text, vector: jsonFlag('vector', opts.vector), k: opts.k, filter: jsonFlag('filter', opts.filter) }
      const answer = await apiRequest(await resolveApiUrl(opts), 'POST', path(collection, '/search'), body)
      if (opts.json === true) return json(answer)
      table(['ID', 'SCORE', 'TEXT', 'METADATA'], answer.hits.map((h: any) => [h.id, h.score.toFixed(3), (h.text ?? '').slice(0, 60), h.metadata === undefined ? '' : JSON.stringify(h.metadata)]))
      const c = answer.coverage
      if (c.complete !== true) line(`incomplete: ${c.silent.length} of ${c.members} members did not answer; records placed only on them are missing`)
    })

  clientOptions(memory.command('rm <collection> <id>'))
    .description('deletes a record (on a majority of its placement)')
    .action(async (collection: string, id: string, _opts: unknown, cmd: Command) => {
      const opts: Opts = cmd.optsWithGlobals()
      const answer = await apiRequest(await resolveApiUrl(opts), 'DELETE', path(collection, `/${encodeURIComponent(id)}`))
      // as rm of a missing file: a non-zero exit for scripts, --json or not
      if (answer.deleted !== true) process.exitCode = 1
      if (opts.json === true) json(answer)
      else if (answer.deleted === true) return line(`deleted ${id} from ${collection}`)
      // on stderr with --json too: stdout keeps the answer alone
      if (answer.deleted !== true) errorLine(`nothing deleted: ${collection} holds no record ${id} older than this delete`)
    })
}
