import { describe, expect, it } from 'vitest'
import { STEP_TERMS_KEY, mergeJournals, withEntries, withStep } from '../../protocols/task/journal.js'

describe('journal entries written in a batch, and bare (a run\'s subtask ids)', () => {
  it('writes a batch in one copy, each entry with the lease\'s terms or, bare, without; a bare entry drops terms its key had', () => {
    const stepped = withStep(undefined, 'k', 'step value', { a: 1 })
    expect(stepped).toEqual({ k: 'step value', [STEP_TERMS_KEY]: { k: { a: 1 } } })
    const batch = withEntries(stepped, [['s1', 1], ['constructor', 2]], { a: 2 })
    expect(batch).toEqual({ k: 'step value', s1: 1, constructor: 2, [STEP_TERMS_KEY]: { k: { a: 1 }, s1: { a: 2 }, constructor: { a: 2 } } })
    expect(Object.hasOwn(batch, 'constructor')).toBe(true)
    const bare = withEntries(stepped, [['subtask:x:0', 'id-1'], ['k', 'bare value']])
    expect(bare).toEqual({ 'subtask:x:0': 'id-1', k: 'bare value' })
    // the journal given is not changed
    expect(stepped).toEqual({ k: 'step value', [STEP_TERMS_KEY]: { k: { a: 1 } } })
  })

  it('two bare values for one key merge to the same one on every copy, in either order, beside steps that keep their terms', () => {
    const a = withEntries(undefined, [['subtask:x:0', 'b-id']])
    const b = withEntries(undefined, [['subtask:x:0', 'a-id']])
    expect(mergeJournals(a, b)).toEqual({ 'subtask:x:0': 'a-id' })
    expect(mergeJournals(b, a)).toEqual({ 'subtask:x:0': 'a-id' })
    const withSteps = withStep(a, 'step', 1, { m: 2 })
    expect(mergeJournals(withSteps, b)).toEqual({ step: 1, 'subtask:x:0': 'a-id', [STEP_TERMS_KEY]: { step: { m: 2 } } })
  })
})
