import { beforeAll, describe, expect, it } from 'vitest'
import { makeTask, mergeRecords, newRecord, resultHash } from '../../protocols/task/index.js'
import { valueToDecide } from '../../node/tasks/mover.js'
import { makePeer } from '../helpers/peers.js'
import type { ShownVote } from '../../protocols/lease/index.js'
import type { FinalValue, Placement, TaskRecord } from '../../protocols/task/index.js'
import type { Peer } from '../helpers/peers.js'

/*
 * What a move binds its new epoch to (Mover.move): the value the old epoch may have certified,
 * from the votes its seal collected, or the value the old epoch was bound to itself.
 */
const X1: FinalValue = { state: 'completed', claimId: 'x1', resultHash: resultHash({ n: 1 }) }
const DEAD: FinalValue = { state: 'dead', reason: 'deadline passed' }
let peers: Peer[] = []
let base: TaskRecord

beforeAll(async () => {
  peers = await Promise.all(Array.from({ length: 4 }, makePeer))
  const task = makeTask({ capability: 'echo', input: { n: 1 }, submitter: peers[0]!.id, maxAttempts: 2, timeoutMs: 1_000, deadline: Date.now() + 3_600_000, now: Date.now() })
  base = newRecord(task, { epoch: 0, members: peers.slice(0, 3).map(p => p.id) }, Date.now())
})

const vote = (peer: Peer, value: FinalValue, epoch = 0, generation = 0): ShownVote => ({ peer: peer.id, generation, epoch, term: 1, value, sig: 'c2ln' })

describe('the value a move binds its new epoch to', () => {
  it('is a value the old epoch may have certified; none when nothing was voted', () => {
    expect(valueToDecide(base, [vote(peers[0]!, X1)], 1, false)).toEqual(X1)
    expect(valueToDecide(base, [], 1, false)).toBeUndefined()
  })

  it('passes on the value an epoch was bound to when the votes it gathered are out of reach, and not a stale generation\'s', () => {
    const bound: Placement = { epoch: 1, members: [peers[0]!.id, peers[1]!.id, peers[3]!.id], mustDecide: { generation: 0, value: X1 } }
    const atOne = { ...base, placement: bound }
    // the seal of epoch 1 reached two members that never voted: the one that did is gone
    expect(valueToDecide(atOne, [], 1, false)).toEqual(X1)
    // a vote the seal did see stands (it can only be the bound value)
    expect(valueToDecide(atOne, [vote(peers[1]!, X1, 1)], 1, false)).toEqual(X1)
    // redriven after a dead decision: the new generation is free
    expect(valueToDecide({ ...atOne, generation: 1 }, [], 1, false)).toBeUndefined()
    expect(valueToDecide({ ...atOne, placement: { ...bound, mustDecide: { generation: 0, value: DEAD } } }, [], 1, false)).toEqual(DEAD)
    // merged with an unbound copy of the same epoch, the binding stays
    expect(valueToDecide(mergeRecords({ ...base, placement: { epoch: 1, members: bound.members } }, atOne), [], 1, false)).toEqual(X1)
  })
})
