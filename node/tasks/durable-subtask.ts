import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash } from 'node:crypto'
import { MAX_JOURNAL_ENTRIES } from '../../protocols/lease/index.js'
import { STEP_TERMS_KEY, SUBTASK_PREFIX, TASK_ID, byteLength, canonicalJson, cloneJson } from '../../protocols/task/index.js'
import { SubtaskFailedError } from '../runtime/agent.js'
import { journalBytes, maxRecordBytes } from './options.js'
import type { DurableRun } from './durable-context.js'
import type { SubmitOptions } from '../runtime/agent.js'
import type { HeldLease } from '../../protocols/lease/index.js'

/** Refusals of a journal write that say the run's lease is over: the run goes no further. */
const LEASE_ENDED = new Set(['StaleTermError', 'TaskFinishedError', 'LeaseLostError'])

/** One wait for a subtask, before it is asked again (a lost completion notice costs no more). */
const WAIT_SLICE_MS = 5_000

/** The parent's journal as the run first read it, and what it held. */
interface JournalRead {
  journal: Record<string, unknown>
  /** the record's input and journal (what maxRecordBytes bounds) */
  bytes: number
  inputBytes: number
  /** of which subtask ids */
  idBytes: number
}

/** What a step's journal entry adds to a record: its key and value, and its key again with the lease's terms. */
export function entryCost (key: string, value: unknown, grants: ReadonlyMap<string, number>): number {
  return 2 * byteLength(key) + byteLength(value) + byteLength(Object.fromEntries(grants)) + 4
}

/** What a subtask id's entry adds: its key and the id, written bare (withEntries). */
function idCost (key: string, id: unknown): number {
  return byteLength(key) + byteLength(id) + 2
}

/** The step a subtask is submitted in, by run: one store for the process (each instance Node tracks costs every promise made after it). */
const stepScope = new AsyncLocalStorage<{ ledger: SubtaskLedger, key: string }>()

/**
 * A run's bookkeeping for its subtasks' ids (see subtask): which submit is which, across attempts,
 * how much of the journal the ids may take, and their writes, many in one.
 */
export class SubtaskLedger {
  private readonly counts = new Map<string, number>()
  private read?: Promise<JournalRead | undefined>
  /** bytes this run added to the journal (steps and subtask ids); `base` of them were in the record when it was read */
  grown = 0
  private base = 0
  private idsGrown = 0
  private readonly queue: Array<{ key: string, value: unknown, settle: (err?: unknown) => void }> = []
  private writing = false

  /** Runs a step's function: the subtasks it submits are told apart by the step's key. */
  async inStep<T> (key: string, fn: () => Promise<T>): Promise<T> {
    return stepScope.run({ ledger: this, key }, fn)
  }

  /**
   * The journal key of a submit: the step it is made in, what it submits, and how many submits of
   * the same that step made before it. A later attempt makes the same submits in the same order
   * where its agent does, whatever order others finish in, and a step it replays makes none.
   * Undefined for an input no canonical form takes (the submit refuses it, saying why).
   */
  keyOf (capability: string, input: unknown, options: SubmitOptions): string | undefined {
    const scope = stepScope.getStore()
    // a subtask run on this node inside its parent's run is not in the parent's step
    const step = scope?.ledger === this ? scope.key : null
    let what: string
    try {
      what = createHash('sha256').update(canonicalJson({ step, capability, input, options })).digest('hex').slice(0, 16)
    } catch {
      return undefined
    }
    const nth = this.counts.get(what) ?? 0
    this.counts.set(what, nth + 1)
    return `${SUBTASK_PREFIX}${what}:${nth}`
  }

  /**
   * The parent's journal, read once a run (each read is of the whole record, and a fan-out submits
   * hundreds). A read that fails fails the submit, as it fails a step: taken for an empty journal,
   * a takeover submitted afresh every subtask an earlier attempt had journaled. The next submit
   * reads again.
   */
  async journal (run: DurableRun): Promise<JournalRead | undefined> {
    if (this.read === undefined) {
      const grownBefore = this.grown
      const reading = run.tasks.find(run.task.id).then(view => view === undefined ? undefined : journalRead(view.record))
      this.read = reading
      let read: JournalRead | undefined
      try {
        read = await reading
      } catch (err) {
        this.read = undefined
        throw err
      }
      if (read === undefined) this.read = undefined
      // what the run journaled before the read began is in it
      else this.base = grownBefore
    }
    return this.read
  }

  /**
   * Whether an id entry of `cost` bytes fits: in the record, with what this run added since it read
   * it, and within half of the room the input leaves, so the ids of a wide fan-out leave room for
   * steps. Counted as written when it fits (`untake` when its write failed).
   */
  take (read: JournalRead, cost: number, maxBytes: number): boolean {
    const fits = read.bytes + this.grown - this.base + cost <= maxBytes && read.idBytes + this.idsGrown + cost <= (maxBytes - read.inputBytes) / 2
    if (fits) {
      this.grown += cost
      this.idsGrown += cost
    }
    return fits
  }

  untake (cost: number): void {
    this.grown -= cost
    this.idsGrown -= cost
  }

  /**
   * Journals an id's entry, bare, under the run's lease, with those asked for while the write before it was on
   * its way: a fan-out of hundreds of subtasks costs a few majority rounds, not one each (each
   * rewrites the whole record on every member).
   */
  async write (lease: HeldLease, key: string, value: unknown): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ key, value, settle: err => { if (err === undefined) resolve(); else reject(err) } })
      if (!this.writing) void this.flush(lease)
    })
  }

  private async flush (lease: HeldLease): Promise<void> {
    this.writing = true
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_JOURNAL_ENTRIES)
      const [first, ...more] = batch as [typeof batch[number], ...typeof batch]
      try {
        await lease.journal(first.key, first.value, more.map(({ key, value }) => ({ key, value })), true)
        for (const e of batch) e.settle()
      } catch (err) {
        for (const e of batch) e.settle(err ?? new Error('journal write failed'))
      }
    }
    this.writing = false
  }
}

function journalRead (record: Parameters<typeof journalBytes>[0]): JournalRead {
  const journal = (record.journal ?? {}) as Record<string, unknown>
  const terms = (journal[STEP_TERMS_KEY] ?? {}) as Record<string, unknown>
  let idBytes = 0
  for (const [key, value] of Object.entries(journal)) {
    // an id kept with terms (written as a step is) costs its key again, with them
    if (key.startsWith(SUBTASK_PREFIX)) idBytes += idCost(key, value) + (terms[key] === undefined ? 0 : idCost(key, terms[key]))
  }
  return { journal, bytes: journalBytes(record), inputBytes: byteLength(record.task.input), idBytes }
}

/**
 * Where a submit's id is journaled: under its key, and each time the submit is made again (the
 * subtask failed, or its result stayed unavailable) under the key and "~1", "~2", ...: a key of
 * its own each time, never written over, so no merge of copies can bring an older id back. The
 * latest id, and the key a new submit takes.
 */
function latest (journal: Record<string, unknown> | undefined, key: string): { id: unknown, next: string } {
  if (journal === undefined || !Object.hasOwn(journal, key)) return { id: undefined, next: key }
  let id = journal[key]
  let k = 1
  for (; Object.hasOwn(journal, `${key}~${k}`); k++) id = journal[`${key}~${k}`]
  return { id, next: `${key}~${k}` }
}

/**
 * The subtask an earlier attempt of this run submitted for `key` (the latest), unless a majority of
 * its placement holds no copy of it or it ended other than completed (a retry of the parent tries
 * its failed subtasks again); and the key a new submit journals under. One that cannot be read now,
 * for want of a majority's answer, is waited for: submitting another could run its work twice.
 */
async function reusable (run: DurableRun, key: string): Promise<{ id?: string, next: string }> {
  const { id, next } = latest((await run.subtasks.journal(run))?.journal, key)
  if (typeof id !== 'string' || !TASK_ID.test(id)) return { next }
  try {
    const found = await run.tasks.find(id, { absentByMajority: true })
    const final = found?.record.final
    return found === undefined || (final !== undefined && final.state !== 'completed') ? { next } : { id, next }
  } catch (err: any) {
    return err?.name === 'QuorumUnavailableError' ? { id, next } : { next }
  }
}

/**
 * Journals a subtask's id under `key`, where it fits. Asked for before the subtask is stored: an
 * aborted run's throw fails the submit, so it starts no more work; another failed write leaves the
 * id unkept, and the subtask goes ahead.
 */
async function keepId (run: DurableRun, signal: AbortSignal, key: string, id: string): Promise<void> {
  const read = await run.subtasks.journal(run)
  const cost = idCost(key, id)
  // past what the record may give ids (a wide fan-out), an id is not kept: a takeover submits that one again
  if (read === undefined || !run.subtasks.take(read, cost, maxRecordBytes(run.options))) {
    run.stats.subtaskIdsUnkept++
    return
  }
  try {
    signal.throwIfAborted()
    await run.subtasks.write(run.lease, key, id)
  } catch (err: any) {
    run.subtasks.untake(cost)
    // the run's lease is gone, or its task finished: it starts no more work
    if (signal.aborted || LEASE_ENDED.has(err?.name)) throw err
    run.stats.subtaskIdsUnkept++
  }
  // aborted while the write was on its way: the subtask is not stored
  signal.throwIfAborted()
}

/** Submits a subtask, its id journaled under `key` once it is made and before it is stored. */
async function submitKept (run: DurableRun, signal: AbortSignal, key: string | undefined, capability: string, input: unknown, options: SubmitOptions, traceparent: string | undefined): Promise<string> {
  let kept = false
  const made = key === undefined ? undefined : async (id: string): Promise<void> => { kept = true; await keepId(run, signal, key, id) }
  const { id } = await run.tasks.submit({ capability, input, parent: run.task.id, traceparent, ...options, made })
  // a task the idempotency key named was not made here: its id is kept now
  if (key !== undefined && !kept) await keepId(run, signal, key, id)
  return id
}

/**
 * A subtask (see AgentContext.submit): its id journaled on a majority of the parent's placement
 * before it is stored, then submitted with its parent named, and its result awaited. A later
 * attempt of the parent (a holder that took it over) that makes the same submit waits for that
 * subtask, where it ran its work a second time; one whose result no replica gives is submitted again.
 */
export async function subtask (run: DurableRun, signal: AbortSignal, capability: string, input: unknown, options: SubmitOptions = {}, traceparent?: string): Promise<unknown> {
  // an aborted run starts no more work on the mesh
  signal.throwIfAborted()
  const key = run.subtasks.keyOf(capability, input, options)
  const found = key === undefined ? undefined : await reusable(run, key)
  if (found?.id === undefined) return awaitSubtask(run, signal, await submitKept(run, signal, found?.next, capability, input, options, traceparent))
  run.stats.subtasksReused++
  try {
    return await awaitSubtask(run, signal, found.id)
  } catch (err: any) {
    if (!(err instanceof SubtaskFailedError) || err.state !== 'completed') throw err
    return awaitSubtask(run, signal, await submitKept(run, signal, found.next, capability, input, options, traceparent))
  }
}

/** The subtask's result, once it completed; SubtaskFailedError when it ended otherwise or its result stays unavailable. */
async function awaitSubtask (run: DurableRun, signal: AbortSignal, id: string): Promise<unknown> {
  /** since when the subtask is known completed without its result here */
  let missingSince: number | undefined
  while (true) {
    signal.throwIfAborted()
    const left = missingSince === undefined ? WAIT_SLICE_MS : run.options.subtaskResultWaitMs - (performance.now() - missingSince)
    if (left <= 0) throw new SubtaskFailedError(id, 'completed', `result unavailable from its replicas for ${run.options.subtaskResultWaitMs} ms`)
    // the signal ends the wait at once: an agent waiting here heeds its abort, as it is asked to;
    // a completed task's missing result is asked for again within the wait, more often at first
    const view = await run.tasks.waitFor(id, Math.min(WAIT_SLICE_MS, left), signal)
    const final = view.record.final
    if (final === undefined) continue
    if (final.state !== 'completed') throw new SubtaskFailedError(id, final.state, final.reason)
    if (view.result !== undefined) return cloneJson(view.result.value)
    // completed, but no replica answered with the result yet: ask again, for a bounded time
    missingSince ??= performance.now()
  }
}
