import { canonicalJson } from '../task/canonical.js'
import { hasValidFinal, mergeRecords, ownRetryTime, resultMatches, samePlacement } from '../task/record.js'
import type { ReplicaTaskState } from '../task/machine.js'
import type { TaskRecord } from '../task/record.js'
import type { TrustedVote } from '../task/certificate.js'
import type { StoredResult } from '../task/store.js'

/** What a member does with a copy of a task: nothing (and answers `record`), or stores the merge. */
export type CopyMerge =
  | { store: false, record: TaskRecord | undefined }
  | { store: true, record: TaskRecord, result: StoredResult | undefined }

export interface CopyRules {
  me: string
  /** a task past retention: a copy of it is not stored again */
  isExpired: (record: TaskRecord) => boolean
  /** counts a final state refused for want of a valid certificate */
  refused: () => void
  /** votes taken unchecked for this copy only (its signer sent it) */
  trusted?: TrustedVote
  /** this member's clock */
  now: number
  /** the longest back-off before a retry (backoffCapMs) */
  maxRetryDelayMs: number
}

/**
 * Merges a copy (a submit, a repair, a copy a read brought; its final state already checked) into
 * the state a member holds. Pure: Replica.put runs it under the task's lock and persists the merge.
 */
export function mergeCopy (before: ReplicaTaskState, record: TaskRecord, result: StoredResult | undefined, rules: CopyRules): CopyMerge {
  const existing = before.record
  // a member's placement changes only by an install: a copy naming another placement (stale, or
  // forged) neither moves it nor brings in a final certified by other peers. A copy of the same
  // placement may bind it to the value its move found (mergeRecords keeps the bound one)
  const pin = (r: TaskRecord): TaskRecord => existing !== undefined && existing.placement.members.includes(rules.me)
    ? { ...r, placement: samePlacement(existing.placement, r.placement) ? r.placement : existing.placement, ...(existing.previous === undefined ? {} : { previous: existing.previous }) }
    : r
  const pinned = pin(record)
  let merged = pin(existing === undefined ? pinned : mergeRecords(existing, pinned))
  if (merged.final !== undefined && !hasValidFinal(merged, merged.final, rules.trusted)) {
    rules.refused()
    if (existing === undefined) return { store: false, record: undefined }
    merged = existing
  }
  merged = ownRetryTime(merged, existing, rules.now, rules.maxRetryDelayMs)
  // a copy of a task already forgotten (or about to be) is not stored again
  if (rules.isExpired(merged)) return { store: false, record: merged }
  let keptResult = before.result
  if (result !== undefined && (merged.final === undefined || resultMatches(merged.final?.cert.value, result))) {
    const kept = before.result
    // only the result the certificate names (by claim and by hash) replaces a kept one
    if (kept === undefined || (!resultMatches(merged.final?.cert.value, kept) && resultMatches(merged.final?.cert.value, result))) keptResult = result
  }
  // a copy that brings nothing new (a refresh that found the task as it was) writes nothing, though
  // mergeRecords makes a new object every time
  if (existing !== undefined && keptResult === before.result && sameRecord(merged, existing)) return { store: false, record: existing }
  return { store: true, record: merged, result: keptResult }
}

/** Whether two records hold the same content: the fields that differ most often first, then all of it. */
function sameRecord (a: TaskRecord, b: TaskRecord): boolean {
  if (a === b) return true
  if (a.updatedAt !== b.updatedAt || a.generation !== b.generation || a.attempts.length !== b.attempts.length || (a.final === undefined) !== (b.final === undefined)) return false
  return canonicalJson(a) === canonicalJson(b)
}
