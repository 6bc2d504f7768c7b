import { describe, expect, it } from 'vitest'
import { SUBSTANCE_FIELDS, recordHash } from '../../protocols/replica/digest.js'
import { taskRecordSchema } from '../../protocols/task/record.js'
import { taskSchema } from '../../protocols/task/schema.js'
import type { TaskRecord } from '../../protocols/task/index.js'

const P = ['A', 'B', 'C'].map(c => `12D3KooW${c.repeat(44)}`)
const HASH = 'a'.repeat(64)

/** A record with every field set, optional ones too, so a change to any of them can be tried. */
function fullRecord (): TaskRecord {
  const value = { state: 'completed' as const, claimId: 'c2', resultHash: HASH }
  return {
    task: { id: 'f'.repeat(64), capability: 'echo', input: { n: 1 }, submitter: P[0]!, createdAt: 1_000, maxAttempts: 3, timeoutMs: 5_000, deadline: 90_000, parent: 'e'.repeat(64), idempotencyKey: 'k', nonce: 'n', traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` },
    placement: { epoch: 1, members: P, mustDecide: { generation: 0, value } },
    previous: [{ epoch: 0, members: P }],
    generation: 0,
    attempts: [{ claimId: 'c1', generation: 0, peer: P[1]!, startedAt: 2_000, endedAt: 3_000, outcome: 'failed', error: 'boom' }, { claimId: 'c2', generation: 0, peer: P[2]!, startedAt: 4_000, endedAt: 5_000, outcome: 'completed' }],
    final: { state: 'completed', at: 6_000, generation: 0, reason: 'done', peer: P[2]!, claimId: 'c2', resultSize: 10, cert: { id: 'f'.repeat(64), generation: 0, epoch: 1, value, votes: [{ peer: P[0]!, term: 1, sig: 's0' }, { peer: P[1]!, term: 1, sig: 's1' }] } },
    droppedGeneration: 0,
    notBefore: 7_000,
    journal: { step: { a: 1 } },
    waiting: { name: 'go', claimId: 'c2', since: 1, until: 2, schema: { type: 'object' } },
    updatedAt: 8_000
  }
}

/** One change to each field: a field the substance hashes must change the hash, another must not. */
const CHANGES: { [part in keyof typeof SUBSTANCE_FIELDS]: Record<string, (r: any) => void> } = {
  record: {
    task: r => { r.task.deadline++ },
    placement: r => { r.placement.epoch++ },
    previous: r => { r.previous = undefined },
    generation: r => { r.generation++ },
    attempts: r => { r.attempts.pop() },
    final: r => { r.final = undefined },
    droppedGeneration: r => { r.droppedGeneration = undefined },
    notBefore: r => { r.notBefore++ },
    journal: r => { r.journal.step.a = 2 },
    waiting: r => { r.waiting.until++ },
    updatedAt: r => { r.updatedAt++ }
  },
  task: {
    id: r => { r.task.id = 'd'.repeat(64) },
    capability: r => { r.task.capability = 'other' },
    input: r => { r.task.input = { n: 2 } },
    submitter: r => { r.task.submitter = P[1] },
    idempotencyKey: r => { r.task.idempotencyKey = 'other' },
    nonce: r => { r.task.nonce = 'other' },
    createdAt: r => { r.task.createdAt++ },
    maxAttempts: r => { r.task.maxAttempts++ },
    timeoutMs: r => { r.task.timeoutMs++ },
    deadline: r => { r.task.deadline++ },
    parent: r => { r.task.parent = undefined },
    traceparent: r => { r.task.traceparent = undefined }
  },
  placement: {
    epoch: r => { r.placement.epoch++ },
    members: r => { r.placement.members = [P[1], P[0], P[2]] },
    mustDecide: r => { r.placement.mustDecide = undefined }
  },
  attempt: {
    claimId: r => { r.attempts[0].claimId = 'other' },
    generation: r => { r.attempts[0].generation++ },
    peer: r => { r.attempts[0].peer = P[0] },
    startedAt: r => { r.attempts[0].startedAt++ },
    endedAt: r => { r.attempts[0].endedAt = undefined },
    outcome: r => { r.attempts[0].outcome = 'expired' },
    error: r => { r.attempts[0].error = 'other' }
  },
  final: {
    state: r => { r.final.state = 'canceled' },
    at: r => { r.final.at++ },
    generation: r => { r.final.generation++ },
    reason: r => { r.final.reason = 'other' },
    peer: r => { r.final.peer = P[0] },
    claimId: r => { r.final.claimId = 'other' },
    resultSize: r => { r.final.resultSize++ },
    cert: r => { r.final.cert.value = { ...r.final.cert.value, resultHash: 'b'.repeat(64) } }
  }
}

describe('the hash anti-entropy compares records by', () => {
  it('names every field of every part of a record, as the schemas have them', () => {
    const shape = taskRecordSchema.shape as any
    const keys = (s: any): string[] => Object.keys(s.shape).sort()
    expect(Object.keys(SUBSTANCE_FIELDS.record).sort()).toEqual(keys(taskRecordSchema))
    expect(Object.keys(SUBSTANCE_FIELDS.task).sort()).toEqual(keys(taskSchema))
    expect(Object.keys(SUBSTANCE_FIELDS.placement).sort()).toEqual(keys(shape.placement))
    expect(Object.keys(SUBSTANCE_FIELDS.attempt).sort()).toEqual(keys(shape.attempts.element))
    expect(Object.keys(SUBSTANCE_FIELDS.final).sort()).toEqual(keys(shape.final.unwrap()))
    expect(taskRecordSchema.safeParse(fullRecord()).success).toBe(true)
  })

  for (const [part, fields] of Object.entries(SUBSTANCE_FIELDS)) {
    for (const [field, hashed] of Object.entries(fields)) {
      it(`${hashed ? 'changes' : 'keeps'} with the ${part}'s ${field}`, () => {
        const changed = structuredClone(fullRecord())
        ;(CHANGES as any)[part][field](changed)
        expect(JSON.stringify(changed)).not.toBe(JSON.stringify(fullRecord()))
        if (hashed) expect(recordHash(changed)).not.toBe(recordHash(fullRecord()))
        else expect(recordHash(changed)).toBe(recordHash(fullRecord()))
      })
    }
  }

  it('is the same for copies that differ only in key order, and in the signatures of one certified outcome', () => {
    const r = fullRecord()
    const reordered = JSON.parse(JSON.stringify({ updatedAt: r.updatedAt + 1, ...Object.fromEntries(Object.entries(r).reverse()) }))
    reordered.final.cert.votes = [{ peer: P[2], term: 3, sig: 'other' }, { peer: P[1], term: 1, sig: 's1' }]
    expect(recordHash(reordered)).toBe(recordHash(r))
  })
})
