import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash } from 'node:crypto'
import { STEP_TERMS_KEY, SUBTASK_PREFIX, byteLength, canonicalJson, cloneJson } from '../../protocols/task/index.js'
import { SubtaskFailedError } from '../runtime/agent.js'
import { journalBytes, maxRecordBytes } from './options.js'
import type { DurableRun } from './durable-context.js'
import type { SubmitOptions } from '../runtime/agent.js'

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

/** What a journal entry adds to a record: its key and value, and its key again with the lease's terms. */
export function entryCost (key: string, value: unknown, grants: ReadonlyMap<string, number>): number {
  return 2 * byteLength(key) + byteLength(value) + byteLength(Object.fromEntries(grants)) + 4
}

/**
 * A run's bookkeeping for its subtasks' ids (see subtask): which submit is which, across attempts,
 * and how much of the journal the ids may take.
 */
export class SubtaskLedger {
  /** the key of the step a subtask is submitted in: each step counts its submits apart */
  private readonly step = new AsyncLocalStorage<string>()
  private readonly counts = new Map<string, number>()
  private read?: Promise<JournalRead | undefined>
  /** bytes this run added to the journal since it was read: steps and subtask ids */
  grown = 0
  private idsGrown = 0

  /** Runs a step's function: the subtasks it submits are told apart by the step's key. */
  async inStep<T> (key: string, fn: () => Promise<T>): Promise<T> {
    return this.step.run(key, fn)
  }

  /**
   * The journal key of a submit: the step it is made in, what it submits, and how many submits of
   * the same that step made before it. A later attempt makes the same submits in the same order
   * where its agent does, whatever order others finish in, and a step it replays makes none.
   * Undefined for an input no canonical form takes (the submit refuses it, saying why).
   */
  keyOf (capability: string, input: unknown, options: SubmitOptions): string | undefined {
    let what: string
    try {
      what = createHash('sha256').update(canonicalJson({ step: this.step.getStore() ?? null, capability, input, options })).digest('hex').slice(0, 32)
    } catch {
      return undefined
    }
    const nth = this.counts.get(what) ?? 0
    this.counts.set(what, nth + 1)
    return `${SUBTASK_PREFIX}${what}:${nth}`
  }

  /** The parent's journal, read once a run: each read is of the whole record, and a fan-out submits hundreds. */
  async journal (run: DurableRun): Promise<JournalRead | undefined> {
    this.read ??= run.tasks.find(run.task.id).then(view => view === undefined ? undefined : journalRead(view.record), () => undefined)
    return this.read
  }

  /**
   * Whether an id entry of `cost` bytes fits: in the record, with what this run added since it read
   * it, and within half of the room the input leaves, so the ids of a wide fan-out leave room for
   * steps. Counted as written when it fits.
   */
  take (read: JournalRead, cost: number, maxBytes: number): boolean {
    const fits = read.bytes + this.grown + cost <= maxBytes && read.idBytes + this.idsGrown + cost <= (maxBytes - read.inputBytes) / 2
    if (fits) {
      this.grown += cost
      this.idsGrown += cost
    }
    return fits
  }
}

function journalRead (record: Parameters<typeof journalBytes>[0]): JournalRead {
  const journal = (record.journal ?? {}) as Record<string, unknown>
  const terms = (journal[STEP_TERMS_KEY] ?? {}) as Record<string, unknown>
  let idBytes = 0
  for (const [key, value] of Object.entries(journal)) {
    if (key.startsWith(SUBTASK_PREFIX)) idBytes += 2 * byteLength(key) + byteLength(value) + byteLength(terms[key] ?? {}) + 4
  }
  return { journal, bytes: journalBytes(record), inputBytes: byteLength(record.task.input), idBytes }
}

/**
 * The subtask an earlier attempt of this run submitted for `key`, unless a majority of its
 * placement holds no copy of it or it ended other than completed (a retry of the parent tries its
 * failed subtasks again). One that cannot be read now is waited for: submitting another could run
 * its work twice.
 */
async function reusable (run: DurableRun, key: string): Promise<string | undefined> {
  const kept = (await run.subtasks.journal(run))?.journal
  const id = kept !== undefined && Object.hasOwn(kept, key) ? (kept[key] as { id?: unknown } | null)?.id : undefined
  if (typeof id !== 'string') return undefined
  try {
    const found = await run.tasks.find(id, { absentByMajority: true })
    const final = found?.record.final
    return found === undefined || (final !== undefined && final.state !== 'completed') ? undefined : id
  } catch {
    return id
  }
}

/** Submits a subtask and journals its id under `key`, where it fits; a journal write that fails leaves the id unkept. */
async function submitAndKeep (run: DurableRun, signal: AbortSignal, key: string | undefined, capability: string, input: unknown, options: SubmitOptions, traceparent: string | undefined): Promise<string> {
  const { id } = await run.tasks.submit({ capability, input, parent: run.task.id, traceparent, ...options })
  if (key === undefined) return id
  const read = await run.subtasks.journal(run)
  const entry = { id }
  // past what the record may give ids (a wide fan-out), an id is not kept: a takeover submits that one again
  if (read === undefined || !run.subtasks.take(read, entryCost(key, entry, run.lease.grants), maxRecordBytes(run.options))) {
    run.stats.subtaskIdsUnkept++
    return id
  }
  try {
    signal.throwIfAborted()
    await run.lease.journal(key, entry)
  } catch (err) {
    // the subtask is on the mesh: this run waits for it all the same, unless the run itself ended
    if (signal.aborted) throw err
    run.stats.subtaskIdsUnkept++
  }
  return id
}

/**
 * A subtask (see AgentContext.submit): submitted with its parent named, its id journaled on a
 * majority of the parent's placement, and its result awaited. A later attempt of the parent (a
 * holder that took it over) that makes the same submit waits for that subtask, where it ran its
 * work a second time; one whose result no replica gives is submitted again.
 */
export async function subtask (run: DurableRun, signal: AbortSignal, capability: string, input: unknown, options: SubmitOptions = {}, traceparent?: string): Promise<unknown> {
  // an aborted run starts no more work on the mesh
  signal.throwIfAborted()
  const key = run.subtasks.keyOf(capability, input, options)
  const reused = key === undefined ? undefined : await reusable(run, key)
  if (reused === undefined) return awaitSubtask(run, signal, await submitAndKeep(run, signal, key, capability, input, options, traceparent))
  run.stats.subtasksReused++
  try {
    return await awaitSubtask(run, signal, reused)
  } catch (err: any) {
    if (!(err instanceof SubtaskFailedError) || err.state !== 'completed') throw err
    return awaitSubtask(run, signal, await submitAndKeep(run, signal, key, capability, input, options, traceparent))
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
