import { describe, expect, it } from 'vitest'
import { canonicalJson, hasValidId, makeTask, mergeRecords, newRecord, stateOf, taskId } from '../../protocols/task/index.js'
import type { TaskRecord } from '../../protocols/task/index.js'

const PEER = '12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'
const OTHER = '12D3KooWBTn2n5nxGB6qhtWcD3HJjam2EZBTNoj7kRMQEBdYohwg'

function task (input: unknown = { a: 1 }, idempotencyKey?: string): TaskRecord['task'] {
  return makeTask({ capability: 'echo', input, submitter: PEER, idempotencyKey, maxAttempts: 3, timeoutMs: 1000, deadline: 10_000, now: 1 })
}

describe('task identity', () => {
  it('hashes canonical content: key order does not matter, content does', () => {
    expect(canonicalJson({ b: 1, a: [2, { d: 1, c: 2 }] })).toBe('{"a":[2,{"c":2,"d":1}],"b":1}')
    const a = taskId({ capability: 'echo', input: { x: 1, y: 2 }, submitter: PEER, idempotencyKey: 'k' })
    const b = taskId({ capability: 'echo', input: { y: 2, x: 1 }, submitter: PEER, idempotencyKey: 'k' })
    const c = taskId({ capability: 'echo', input: { y: 2, x: 1 }, submitter: OTHER, idempotencyKey: 'k' })
    expect(a).toBe(b)
    expect(a).not.toBe(c)
  })

  it('gives the same id for the same idempotency key and a new one without', () => {
    expect(task({ a: 1 }, 'key').id).toBe(task({ a: 1 }, 'key').id)
    expect(task({ a: 1 }).id).not.toBe(task({ a: 1 }).id)
  })

  it('detects a task whose id does not match its content', () => {
    const t = task()
    expect(hasValidId(t)).toBe(true)
    expect(hasValidId({ ...t, input: { a: 2 } })).toBe(false)
  })
})

describe('record merge', () => {
  const base = newRecord(task(), 1)
  const running: TaskRecord = { ...base, attempts: [{ claimId: 'c1', generation: 0, peer: PEER, startedAt: 2, outcome: 'running' }], updatedAt: 2 }
  const failed: TaskRecord = { ...base, attempts: [{ claimId: 'c1', generation: 0, peer: PEER, startedAt: 2, endedAt: 3, outcome: 'failed', error: 'x' }], notBefore: 5, updatedAt: 3 }
  const retry: TaskRecord = { ...base, attempts: [{ claimId: 'c2', generation: 0, peer: OTHER, startedAt: 6, outcome: 'running' }], updatedAt: 6 }
  const completed: TaskRecord = { ...base, attempts: [{ claimId: 'c2', generation: 0, peer: OTHER, startedAt: 6, endedAt: 7, outcome: 'completed' }], final: { state: 'completed', at: 7, generation: 0, peer: OTHER, claimId: 'c2' }, updatedAt: 7 }
  // the same completion seen by two replicas, each stamping its own clock
  const completedElsewhere: TaskRecord = { ...completed, attempts: [{ ...completed.attempts[0]!, endedAt: 9 }], final: { ...completed.final!, at: 8, resultSize: 3 } }
  const all = [base, running, failed, retry, completed, completedElsewhere]

  it('is commutative, associative and idempotent', () => {
    for (const a of all) {
      expect(mergeRecords(a, a)).toEqual(mergeRecords(a, base))
      for (const b of all) {
        expect(mergeRecords(a, b)).toEqual(mergeRecords(b, a))
        for (const c of all) expect(mergeRecords(mergeRecords(a, b), c)).toEqual(mergeRecords(a, mergeRecords(b, c)))
      }
    }
  })

  it('ends completed whatever order the pieces arrive in', () => {
    const orders = [[running, failed, retry, completed], [completed, retry, failed, running], [failed, completed, running, retry]]
    for (const order of orders) {
      const merged = order.reduce((acc, r) => mergeRecords(acc, r), base)
      expect(stateOf(merged)).toBe('completed')
      expect(merged.attempts.map(a => a.outcome)).toEqual(['failed', 'completed'])
    }
  })

  it('derives the state from attempts and the final state', () => {
    expect(stateOf(base)).toBe('pending')
    expect(stateOf(running)).toBe('running')
    expect(stateOf(failed)).toBe('failed')
    expect(stateOf(mergeRecords(failed, retry))).toBe('running')
  })

  it('lets a redrive (a newer generation) supersede a dead end', () => {
    const dead: TaskRecord = { ...failed, final: { state: 'dead', at: 4, generation: 0, reason: 'out of attempts' } }
    const redriven: TaskRecord = { ...base, generation: 1, updatedAt: 8 }
    expect(stateOf(dead)).toBe('dead')
    expect(stateOf(mergeRecords(dead, redriven))).toBe('pending')
    expect(stateOf(mergeRecords(redriven, dead))).toBe('pending')
  })
})
