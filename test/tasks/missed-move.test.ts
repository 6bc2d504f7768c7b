import { describe, expect, it } from 'vitest'
import { agreedMove } from '../../node/tasks/find-task.js'
import type { Placement } from '../../protocols/task/index.js'

const old: Placement = { epoch: 0, members: ['a', 'b', 'c'] }
const moved: Placement = { epoch: 1, members: ['a', 'b', 'd'] }
const bound: Placement = { ...moved, mustDecide: { generation: 0, value: { state: 'completed', claimId: 'x', resultHash: 'a'.repeat(64) } } }

describe('the newer placement a member away for a move takes', () => {
  it('takes one only when a majority of its old placement holds that same one', () => {
    // one answer: a stale relay or a lying peer would rewrite this member's copy
    expect(agreedMove(old, new Map([['a', moved]]))).toBeUndefined()
    expect(agreedMove(old, new Map([['a', moved], ['b', moved]]))).toEqual(moved)
  })

  it('takes none when the newest answers differ, as an install that failed and a forced move of one epoch do', () => {
    const forced: Placement = { epoch: 1, members: ['a', 'e', 'f'] }
    expect(agreedMove(old, new Map([['a', moved], ['b', forced]]))).toBeUndefined()
    // a majority must hold the newest: one ahead of the other is not yet agreed
    expect(agreedMove(old, new Map([['a', moved], ['b', { epoch: 2, members: ['a', 'b', 'e'] }]]))).toBeUndefined()
  })

  it('keeps the value the move bound the epoch to, and takes none while the copies differ there', () => {
    expect(agreedMove(old, new Map([['a', bound], ['b', bound]]))).toEqual(bound)
    // one peer's word for a binding the others lack is not taken
    expect(agreedMove(old, new Map([['a', moved], ['b', bound]]))).toBeUndefined()
    const otherValue: Placement = { ...moved, mustDecide: { generation: 0, value: { state: 'canceled' } } }
    expect(agreedMove(old, new Map([['a', otherValue], ['b', bound]]))).toBeUndefined()
  })
})
