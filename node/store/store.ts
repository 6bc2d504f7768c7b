import { readdir } from 'node:fs/promises'
import { Level } from 'level'
import { z } from 'zod'
import { CorruptRecordError, DataDirError, DataDirInUseError, StoreFailedError } from '../errors.js'
import { leaseStateSchema, storedResultSchema, taskRecordSchema } from '../../protocols/task/index.js'
import { memoryEntrySchema } from '../../protocols/memory/index.js'
import { Namespace } from './namespace.js'
import { refuseDroppedData, refuseMarked } from './dropped-data.js'
import { forgetClosedLog, noteClosedLog, refuseShortLog } from './closed-log.js'
import { refuseMissingLog } from './log-check.js'
import { atTurnWrites } from '../../protocols/end-of-turn.js'
import { checkTables } from './table-check.js'
import type { TablesChecked } from './table-check.js'
import type { BatchOp } from './namespace.js'
import type { MemoryEntry } from '../../protocols/memory/index.js'
import type { LeaseState, StoredResult, TaskRecord } from '../../protocols/task/index.js'
import type { Logger } from '@libp2p/interface'

const deadLetterIndexSchema = z.object({ at: z.number(), reason: z.string().optional(), capability: z.string() })
export type DeadLetterIndex = z.infer<typeof deadLetterIndexSchema>

export interface StoreFigures {
  tasks: number
  leases: number
  results: number
  deadLetters: number
  corruptRecords: number
}

type RecordCounts = Omit<StoreFigures, 'corruptRecords'>

/** A count of the store's records is reused for this many times as long as it took (see Store.figures). */
export const FIGURES_REUSE_FACTOR = 10

export interface StoreInit {
  /** the LevelDB directory */
  path: string
  log?: Logger
  /** a record that could not be decoded: counted, skipped, and told here */
  onCorrupt?: (message: string) => void
}

/** Corrupt records remembered by key, so each is counted once; past this many, each read counts. */
const MAX_CORRUPT_KEYS_KEPT = 10_000

/**
 * The namespaces whose damage takes a task's replica out of it: its record and its lease state (the
 * grants and votes it must not forget). An unreadable result is only missing here: the record
 * still answers, and a read from the placement brings the result back.
 */
const TASK_PARTS = new Set(['tasks', 'leases'])

/**
 * The node's one LevelDB. LevelDB's own LOCK file makes a second process on the same directory
 * fail at open, which is how a second daemon on a data dir in use is refused.
 */
export class Store {
  readonly meta: Namespace<unknown>
  readonly tasks: Namespace<TaskRecord>
  readonly leases: Namespace<LeaseState>
  readonly results: Namespace<StoredResult>
  /** index of dead tasks not dropped: id -> when and why */
  readonly deadLetters: Namespace<DeadLetterIndex>
  /** vector memory records this node keeps as a placement member, by `collection/id` */
  readonly memory: Namespace<MemoryEntry>
  /** every task record's id by when its task was created (createdKey): what a listing reads, newest first */
  readonly created: Namespace<unknown>
  /** the same, by capability first (capabilityKey): what a listing of one capability reads */
  readonly byCapability: Namespace<unknown>
  /** group commits: batches written, those of them fsynced, and the operations they carried */
  readonly stats = { groupCommits: 0, syncedCommits: 0, groupedWrites: 0 }
  private readonly db: Level<string, string>
  private readonly path: string
  private readonly log?: Logger
  private corrupt = 0
  private readonly corruptSeen = new Set<string>()
  /**
   * Tasks whose record or lease state was found unreadable (at the start's scan or a later read).
   * Their replica takes no part in them: a lease state it cannot read may hold a vote or a grant it
   * must not forget.
   */
  readonly damagedTasks = new Set<string>()
  /** writes waiting for the next group commit, and who waits on them */
  private queued: BatchOp[] = []
  private queuedSync = false
  private waiting: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  private flushScheduled = false
  /** the batch on its way to disk, if any */
  private writing: Promise<void> | undefined
  /** the count of records under way, and the last one (see figures) */
  private counting: Promise<RecordCounts> | undefined
  private counted: { counts: RecordCounts, at: number, tookMs: number } | undefined
  /** the write that failed, once one did: every later write is refused with it */
  private failure: StoreFailedError | undefined

  /** Counts a record found unreadable or altered (once per key), tells the log and the operator, and marks its task damaged when it is a record or lease state. */
  readonly reportCorrupt: (err: CorruptRecordError) => void

  private constructor (db: Level<string, string>, path: string, log?: Logger, told?: (message: string) => void) {
    this.db = db
    this.path = path
    this.log = log
    const onCorrupt = (err: CorruptRecordError): void => {
      // a record is read again on every request that names it: counted once (figures say records, not reads)
      const key = err.where === undefined ? undefined : `${err.where.namespace}/${err.where.key}`
      if (key !== undefined && this.corruptSeen.has(key)) return
      if (key !== undefined && this.corruptSeen.size < MAX_CORRUPT_KEYS_KEPT) this.corruptSeen.add(key)
      this.corrupt++
      if (err.where !== undefined && TASK_PARTS.has(err.where.namespace)) this.damagedTasks.add(err.where.key)
      log?.error('skipping corrupt record %s', err.message)
      told?.(err.message)
    }
    this.reportCorrupt = onCorrupt
    const ns = <T>(name: string, schema: z.ZodType<T>): Namespace<T> =>
      new Namespace(name, db.sublevel<string, string>(name, { valueEncoding: 'utf8' }), schema, onCorrupt, async (ops, options) => this.write(ops, options))
    this.meta = ns('meta', z.unknown())
    this.tasks = ns('tasks', taskRecordSchema)
    this.leases = ns('leases', leaseStateSchema)
    this.results = ns('results', storedResultSchema)
    this.deadLetters = ns('deadletters', deadLetterIndexSchema)
    this.memory = ns('memory', memoryEntrySchema)
    this.created = ns('created', z.unknown())
    this.byCapability = ns('bycapability', z.unknown())
  }

  static async open (init: StoreInit): Promise<Store> {
    const files = await refuseHeadless(init.path)
    await refuseMarked(init.path)
    await refuseMissingLog(init.path)
    await refuseShortLog(init.path)
    const tables = await refuseDamagedTables(init.path, files)
    const db = new Level<string, string>(init.path, { valueEncoding: 'utf8' })
    try {
      await db.open()
    } catch (err: any) {
      if (err?.cause?.code === 'LEVEL_LOCKED' || err?.code === 'LEVEL_LOCKED') {
        throw new DataDirInUseError(`the store at ${init.path} is in use by another process`)
      }
      const why = levelWords(err)
      // a store this process may not read or write is not damaged: its permissions are what to fix
      const fix = /Permission denied|EACCES|EPERM|Read-only file system|EROFS/.test(why)
        ? `let the user this daemon runs as read and write ${init.path} and everything in it (or start as its owner)`
        // a full disk damages nothing: the store opens once there is room
        : /No space left|ENOSPC|quota/i.test(why)
          ? 'the disk is full (the store is not damaged): free disk space, then start again'
          : 'restore the data dir from a backup, or start with a new data dir as a new peer'
      throw new DataDirError(`the store at ${init.path} cannot be opened (${why}): ${fix}`, { cause: err })
    }
    try {
      await refuseDroppedData(init.path)
      await forgetClosedLog(init.path)
    } catch (err) {
      await db.close().catch(() => {})
      throw err
    }
    const store = new Store(db, init.path, init.log, init.onCorrupt)
    try {
      // a table without its footer was left to LevelDB: if it is live, reading every key finds it
      if (tables.unfinished > 0) await store.readEveryKey()
    } catch (err: any) {
      await db.close().catch(() => {})
      throw new DataDirError(`the store at ${init.path} cannot be read whole (${levelWords(err)}): a table on disk is damaged, and this member would grant and vote without what it held. Restore the data dir from a backup, or start with a new data dir as a new peer`, { cause: err })
    }
    try {
      await store.indexCreated()
    } catch (err: any) {
      await db.close().catch(() => {})
      throw new DataDirError(`the store at ${init.path} could not index its tasks (${String(err?.message ?? err)}): check the disk, then start again`, { cause: err })
    }
    return store
  }

  /**
   * Reads every block of the store once, keys only: LevelDB opens a store without reading its
   * tables, so a live table it cannot read (one cut short, its footer lost) was found by the first
   * request that read it, after the member had granted and voted without what it held.
   */
  private async readEveryKey (): Promise<void> {
    for await (const key of this.db.keys({ keyEncoding: 'buffer' } as any)) void key
  }

  /**
   * Builds the creation index of a store written before it existed, once: a listing read every
   * record the store held (a dashboard lists every few seconds, and a node keeps a week of tasks).
   */
  private async indexCreated (): Promise<void> {
    const created = await this.meta.get(CREATED_INDEX) === undefined
    // the capability index came later: a store with the creation index may still lack it
    const byCapability = await this.meta.get(CAPABILITY_INDEX) === undefined
    if (!created && !byCapability) return
    const ops: BatchOp[] = []
    // read raw: a corrupt record is counted, and skipped, where it is read for what it holds
    for await (const [id, raw] of this.tasks.rawEntries()) {
      let task: { createdAt?: unknown, capability?: unknown } | undefined
      try { task = JSON.parse(raw)?.task } catch {}
      if (typeof task?.createdAt !== 'number') continue
      const key = createdKey(task.createdAt, id)
      if (created) ops.push(this.created.putOp(key, 1))
      if (byCapability && typeof task.capability === 'string') ops.push(this.byCapability.putOp(capabilityKey(task.capability, key), 1))
      if (ops.length >= 1_000) await this.write(ops.splice(0))
    }
    await this.write(ops)
    if (created) await this.meta.put(CREATED_INDEX, 1, { sync: true })
    if (byCapability) await this.meta.put(CAPABILITY_INDEX, 1, { sync: true })
  }

  /**
   * Group commit: the writes of every operation that arrives in one turn of the event loop, or
   * while the previous batch is on its way to disk, go to disk as one atomic LevelDB batch with one
   * fsync, and each caller resolves only once that batch is on disk. So batches grow with the load,
   * and a lone write goes out at the next turn: low load pays no batching delay.
   */
  async write (ops: BatchOp[], options: { sync?: boolean } = {}): Promise<void> {
    if (ops.length === 0) return
    if (this.failure !== undefined) throw this.failure
    this.queued.push(...ops)
    this.queuedSync ||= options.sync ?? false
    const done = new Promise<void>((resolve, reject) => { this.waiting.push({ resolve, reject }) })
    if (!this.flushScheduled) {
      this.flushScheduled = true
      atTurnWrites(() => { void this.flush() })
    }
    return done
  }

  private async flush (): Promise<void> {
    while (this.writing !== undefined) await this.writing
    const ops = this.queued
    const sync = this.queuedSync
    const waiting = this.waiting
    this.queued = []
    this.queuedSync = false
    this.waiting = []
    this.flushScheduled = false
    // queued while the batch that failed was on its way: it must not follow that batch's torn bytes
    if (this.failure !== undefined) {
      for (const w of waiting) w.reject(this.failure)
      return
    }
    const writing = this.db.batch(ops as any, { sync } as any).then(() => {
      this.stats.groupCommits++
      if (sync) this.stats.syncedCommits++
      this.stats.groupedWrites += waiting.length
      for (const w of waiting) w.resolve()
    }, (err: any) => {
      const failed = this.failed(err)
      for (const w of waiting) w.reject(failed)
    }).finally(() => { this.writing = undefined })
    this.writing = writing
    await writing
  }

  /**
   * A write LevelDB refused. Its I/O errors (a full disk) and corruption stop every later write:
   * LevelDB appends the next record after the failed one's torn bytes, and the next start finds the
   * log damaged in its middle and must refuse the store. A store that stopped writing keeps a torn
   * tail only, which the next open drops as a crash's. Any other error (a store closed under a stop)
   * is passed on as it is.
   */
  private failed (err: any): Error {
    if (this.failure !== undefined) return this.failure
    const words = levelWords(err)
    if (err?.code !== 'LEVEL_IO_ERROR' && err?.code !== 'LEVEL_CORRUPTION' && !/IO error|Corruption/.test(words)) return err
    const full = /No space left|ENOSPC|quota/i.test(words)
    this.failure = new StoreFailedError(`the store at ${this.path} failed a write (${words}) and takes no more until this node restarts: ${full ? 'free disk space' : 'check the disk'}, then restart the node`, { cause: err })
    this.log?.error('%s', this.failure.message)
    return this.failure
  }

  /** The write failure that stopped this store's writes, if one did (the node is unhealthy until restarted). */
  get writeFailure (): StoreFailedError | undefined {
    return this.failure
  }

  /** Raw meta bytes (the node key), kept out of JSON; CorruptRecordError when there but unreadable (not counted: the caller decides). */
  async getBytes (key: string): Promise<Uint8Array | undefined> {
    const raw = await this.meta.raw(key)
    if (raw === undefined) return undefined
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch {}
    if (typeof value !== 'string') throw new CorruptRecordError(`meta/${key}: not the form it was written in`)
    return Buffer.from(value, 'base64')
  }

  /** `sync: false` for a hint that may be lost with a crash (known peers); the node key is synced */
  async putBytes (key: string, value: Uint8Array, { sync = true }: { sync?: boolean } = {}): Promise<void> {
    await this.meta.put(key, Buffer.from(value).toString('base64'), { sync })
  }

  /**
   * What the store holds. Counting reads every key (about a second a million records), and every
   * GET /v1/node asks: callers share the count under way, and a finished count is reused for
   * FIGURES_REUSE_FACTOR times as long as it took. So a client polling however often spends at
   * most about a tenth of a core on it, and the figures are never older than that (a count of a
   * few thousand records, a few milliseconds). Corrupt records are counted as they are found.
   */
  async figures (): Promise<StoreFigures> {
    const last = this.counted
    // a closed store answers as LevelDB does, not from the last count
    const fresh = last !== undefined && this.db.status === 'open' && performance.now() - last.at < last.tookMs * FIGURES_REUSE_FACTOR
    const counts = fresh ? last.counts : await (this.counting ??= this.countAll().finally(() => { this.counting = undefined }))
    return { ...counts, corruptRecords: this.corrupt }
  }

  private async countAll (): Promise<RecordCounts> {
    const started = performance.now()
    const [tasks, leases, results, deadLetters] = await Promise.all([
      this.tasks.count(), this.leases.count(), this.results.count(), this.deadLetters.count()
    ])
    const counts = { tasks, leases, results, deadLetters }
    const at = performance.now()
    this.counted = { counts, at, tookMs: at - started }
    return counts
  }

  get status (): string {
    return this.db.status
  }

  async close (): Promise<void> {
    if (this.db.status !== 'open') return
    await this.db.close()
    // a clean stop: the next start can tell a log cut short since from one a crash cut
    await noteClosedLog(this.path).catch((err: any) => { this.log?.('the log\'s length not noted at close: %s', err?.message) })
  }
}

/**
 * Checks every table's block checksums before LevelDB opens the store (see table-check.ts): after
 * the open, its merge may already have rewritten the damage, or aborted on it.
 */
async function refuseDamagedTables (path: string, files: readonly string[]): Promise<TablesChecked> {
  try {
    return await checkTables(path, files)
  } catch (err: any) {
    if (err?.name === 'DamagedTableError') throw new DataDirError(`the store at ${path} has a damaged table (${String(err.message)}): this member would grant and vote on what the damage made of it. Restore the data dir from a backup, or start with a new data dir as a new peer`, { cause: err })
    throw new DataDirError(`cannot read the tables of the store at ${path}: ${String(err?.code ?? err?.message)}`, { cause: err })
  }
}

/** LevelDB's own words for a failure ("Corruption: ...", "IO error: ..."), with the message around them. */
function levelWords (err: any): string {
  return [err?.message, err?.cause?.message].filter((m): m is string => typeof m === 'string' && m !== '').join(': ') || 'no reason given'
}

/** The meta key that says the creation index holds every record. */
const CREATED_INDEX = 'created-index'
const CAPABILITY_INDEX = 'capability-index'

/** The creation index's key: the time, zero-padded so keys sort by it, then the id. */
export function createdKey (createdAt: number, id: string): string {
  const at = Number.isFinite(createdAt) ? Math.min(Math.max(0, Math.floor(createdAt)), 9_999_999_999_999_999) : 0
  return `${String(at).padStart(16, '0')}/${id}`
}

/** A capability index key: the capability, then the creation index key (a capability holds no "/"). */
export const capabilityKey = (capability: string, created: string): string => `${capability}/${created}`

/** The capability index's keys of one capability: "/" sorts just below "0", so no other capability's fall between. */
export const capabilityRange = (capability: string): { gte: string, lt: string } => ({ gte: `${capability}/`, lt: `${capability}0` })

/** The task id of a creation index key. */
export const idOfCreatedKey = (key: string): string => key.slice(key.indexOf('/') + 1)

/**
 * The files of the store directory (none if it is not there yet). A store directory that holds LevelDB's tables or logs but no CURRENT file: opened as it is, LevelDB
 * would make a new, empty database beside them (and this node a new peer). Refused instead.
 */
async function refuseHeadless (path: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(path)
  } catch (err: any) {
    if (err?.code === 'ENOENT') return []
    throw new DataDirError(`cannot read the store directory ${path}: ${String(err?.code ?? err?.message)}`, { cause: err })
  }
  // a manifest alone held nothing: LevelDB writes it before CURRENT when it makes a new store, and a
  // first start cut off between the two must not be refused for good
  const data = names.some(n => /^\d+\.(ldb|log|sst)$/.test(n))
  if (data && !names.includes('CURRENT')) throw new DataDirError(`the store at ${path} has LevelDB files but no CURRENT file, so LevelDB cannot tell which are live: restore CURRENT from a backup, or start with a new data dir as a new peer`)
  return names
}
