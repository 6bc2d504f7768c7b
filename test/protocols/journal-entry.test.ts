import { describe, expect, it } from 'vitest'
import { STEP_TERMS_KEY, mergeJournals, withEntry, withStep } from '../../protocols/task/journal.js'

describe('a bare journal entry (a run\'s subtask ids)', () => {
  it('is kept without terms, and drops terms a step under its key had', () => {
    const stepped = withStep(undefined, 'k', 'step value', { a: 1 })
    expect(stepped[STEP_TERMS_KEY]).toEqual({ k: { a: 1 } })
    const bare = withEntry(withEntry(stepped, 'subtask:x:0', 'id-1'), 'k', 'bare value')
    expect(bare).toEqual({ 'subtask:x:0': 'id-1', k: 'bare value', [STEP_TERMS_KEY]: {} })
  })

  it('two bare values for one key merge to the same one on every copy, in either order', () => {
    const a = withEntry(undefined, 'subtask:x:0', 'b-id')
    const b = withEntry(undefined, 'subtask:x:0', 'a-id')
    expect(mergeJournals(a, b)).toEqual({ 'subtask:x:0': 'a-id' })
    expect(mergeJournals(b, a)).toEqual({ 'subtask:x:0': 'a-id' })
    // beside steps, whose terms stay theirs
    const withSteps = withStep(a, 'step', 1, { m: 2 })
    expect(mergeJournals(withSteps, b)).toEqual({ step: 1, 'subtask:x:0': 'a-id', [STEP_TERMS_KEY]: { step: { m: 2 } } })
  })
})
