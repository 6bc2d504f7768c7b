/**
 * The task: an immutable submission whose id hashes its content, and the mergeable record of what
 * happened to it. Pure data and functions; no I/O except the store interface.
 */
export * from './schema.js'
export * from './record.js'
export * from './store.js'
export { canonicalJson } from './canonical.js'
export { JOURNAL_KEY_RULE, STEP_KEY_RULE, STEP_TERMS_KEY, SUBTASK_PREFIX, isJournalKey, isStepKey, withEntries, withStep } from './journal.js'
export type { LeaseTerms } from './journal.js'
export { randomHex } from './random-hex.js'
export { JSON_VALUE_WHAT, MAX_JSON_DEPTH, NOT_JSON, cloneJson, copyJson, isJsonValue, jsonValue } from './json-value.js'
export * from './certificate.js'
