import { canonicalOrder } from './canonical.js'
import type { TaskRecord } from './record.js'

type Journal = NonNullable<TaskRecord['journal']>
/** By member of the placement: the term at which it granted the lease a step was written under. */
export type LeaseTerms = Record<string, number>

/**
 * The journal entry under which each durable step's writer is kept: the terms its holder's lease
 * was granted at, by member. No step key starts with NUL (the lease protocol refuses one).
 */
export const STEP_TERMS_KEY = '\u0000terms'

/** The journal keys signals are kept under start so (signalKey). */
export const SIGNAL_PREFIX = 'signal:'

/** The journal keys a run's subtask ids are kept under start so (node/tasks/durable-subtask.ts). */
export const SUBTASK_PREFIX = 'subtask:'

/**
 * What a journal key may be, as the lease protocol takes it: 1-256 characters (UTF-16 units), not
 * NUL first (the journal's own), not "signal:" first (where signals are kept: such a step was read
 * as the signal), not "__proto__" (JSON parsers drop it).
 */
export const JOURNAL_KEY_RULE = 'a key of 1-256 characters, not starting with NUL or "signal:", and not "__proto__"'

export function isJournalKey (key: unknown): key is string {
  return typeof key === 'string' && key.length >= 1 && key.length <= 256 && !key.startsWith('\u0000') && !key.startsWith(SIGNAL_PREFIX) && key !== '__proto__'
}

/** What an agent's step key may be: a journal key not "subtask:" first (the runtime's own, for the subtasks it submitted). */
export const STEP_KEY_RULE = 'a key of 1-256 characters, not starting with NUL, "signal:" or "subtask:", and not "__proto__"'

export function isStepKey (key: unknown): key is string {
  return isJournalKey(key) && !key.startsWith(SUBTASK_PREFIX)
}

/*
 * Two values for one step key: a holder frozen past its lease wrote one to a member that still
 * granted it (a minority: its write failed), while the next holder wrote another to a majority and
 * went on from it. Any two majorities of a placement share a member, and a member grants a later
 * lease at a higher term: where both writers' members overlap, the higher term names the later
 * lease, whose value stands. (The smaller value by canonical JSON, the rule before, could bring
 * back the frozen holder's value after the next holder had used the other.)
 */

/**
 * The journal with entries written in one copy (a holder's batch: one copy of the journal per
 * entry made a batch of hundreds quadratic), each kept with `terms`, its lease's, or bare, without
 * (a run's subtask ids: each is written under a key of its own, never over another; see
 * node/tasks/durable-subtask.ts). Copies that differ under a bare key keep the smaller value.
 */
export function withEntries (journal: Journal | undefined, entries: Array<[string, Journal[string]]>, terms?: LeaseTerms): Journal {
  const out: Journal = { ...journal }
  const kept = termsOf(journal)
  for (const [key, value] of entries) {
    // defined, not assigned: a key such as "constructor" is a key like any other
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
    if (terms === undefined) kept.delete(key)
    else kept.set(key, terms)
  }
  delete out[STEP_TERMS_KEY]
  if (kept.size > 0) out[STEP_TERMS_KEY] = Object.fromEntries(kept)
  return out
}

/** The journal with a step written: its value, and the terms its holder's lease was granted at. */
export function withStep (journal: Journal | undefined, key: string, value: Journal[string], terms: LeaseTerms): Journal {
  return withEntries(journal, [[key, value]], terms)
}

/**
 * Union by key; two different values for one key resolve the same way everywhere: a value kept
 * with its lease's terms over one kept without (from before the terms), then the later lease's,
 * then the smaller value.
 */
export function mergeJournals (a?: Journal, b?: Journal): Journal | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  const termsA = termsOf(a)
  const termsB = termsOf(b)
  // entries, not assignments: a key such as "__proto__" or "constructor" is a key like any other
  const out: Array<[string, Journal[string]]> = []
  const terms: Array<[string, LeaseTerms]> = []
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (key === STEP_TERMS_KEY) continue
    const ta = termsA.get(key)
    const tb = termsB.get(key)
    // b's entry sorts first when it names its lease and a's does not (a step kept before the terms
    // were), or its lease is the later; else when its value, then its terms, are the smaller
    const takeB = !Object.hasOwn(a, key) || (Object.hasOwn(b, key) && (Number(ta !== undefined) - Number(tb !== undefined) || laterLease(tb, ta) || canonicalOrder(b[key], a[key]) || canonicalOrder(tb ?? null, ta ?? null)) < 0)
    const [value, by] = takeB ? [b[key], tb] : [a[key], ta]
    out.push([key, value as Journal[string]])
    if (by !== undefined) terms.push([key, by])
  }
  if (terms.length > 0) out.push([STEP_TERMS_KEY, sortedObject(terms)])
  return sortedObject(out)
}

/**
 * Which of two writers' leases is the later: the term they were granted at by a member both name
 * (the first such member by id, where they differ: in a real history every shared member agrees).
 * Negative when `a` is the later, positive when `b` is, 0 when no member tells them apart.
 */
function laterLease (a: LeaseTerms | undefined, b: LeaseTerms | undefined): number {
  if (a === undefined || b === undefined) return 0
  let first: string | undefined
  for (const peer of Object.keys(a)) {
    if (Object.hasOwn(b, peer) && a[peer] !== b[peer] && (first === undefined || peer < first)) first = peer
  }
  if (first === undefined) return 0
  return (a[first] as number) > (b[first] as number) ? -1 : 1
}

/** The steps' terms a journal keeps, by step key; a malformed entry (a peer's, or damage) counts as none. */
function termsOf (journal: Journal | undefined): Map<string, LeaseTerms> {
  const out = new Map<string, LeaseTerms>()
  const kept = journal !== undefined && Object.hasOwn(journal, STEP_TERMS_KEY) ? journal[STEP_TERMS_KEY] : undefined
  if (kept === null || typeof kept !== 'object' || Array.isArray(kept)) return out
  for (const [key, terms] of Object.entries(kept)) {
    if (terms === null || typeof terms !== 'object' || Array.isArray(terms)) continue
    if (Object.values(terms).every(t => Number.isSafeInteger(t))) out.set(key, terms as LeaseTerms)
  }
  return out
}

function sortedObject<T> (entries: Array<[string, T]>): Record<string, T> {
  return Object.fromEntries(entries.sort(([x], [y]) => x < y ? -1 : 1))
}
