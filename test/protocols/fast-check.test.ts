import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { leaseRequestSchema, leaseResponseSchema } from '../../protocols/lease/messages.js'
import { recordsRequestSchema } from '../../protocols/records/messages.js'
import { fastCheck, fastParse } from '../../protocols/rpc/fast-check.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'
import { Rng } from '../../sim/rng.js'
import type { ZodType } from 'zod'

/*
 * The fast check may only ever say "this is already what zod's parse returns": for every value it
 * passes, zod must pass it too and return an equal value. Held to zod over valid requests of each
 * hot kind and tens of thousands of mutations of them.
 */

const PEER = (c: string): string => `12D3KooW${c.repeat(44)}`
const [A, B, C] = [PEER('A'), PEER('B'), PEER('C')]
const HASH = 'ab'.repeat(32)

function samples (): Array<{ schema: ZodType, value: unknown }> {
  const task = makeTask({ capability: 'echo', input: { n: 1, text: 'héllo', list: [1, 2.5, null, true, { deep: ['x'] }] }, submitter: A, maxAttempts: 3, timeoutMs: 30_000, deadline: Date.now() + 60_000, traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` })
  const placement = { epoch: 0, members: [A, B, C] }
  const record = newRecord(task, placement)
  const value = { state: 'completed', claimId: 'c1', resultHash: HASH }
  const vote = (peer: string): { peer: string, term: number, sig: string } => ({ peer, term: 1, sig: 'c2ln'.repeat(20) })
  const cert = { id: task.id, generation: 0, epoch: 0, value, votes: [vote(A), vote(B)] }
  const finished = { ...record, attempts: [{ claimId: 'c1', generation: 0, peer: A, startedAt: 1, endedAt: 2, outcome: 'completed' }], final: { state: 'completed', at: 3, generation: 0, peer: A, claimId: 'c1', resultSize: 10, cert }, journal: { 'step:1': { a: [1] } }, updatedAt: 4 }
  const result = { claimId: 'c1', peer: A, value: { out: 'x' }, size: 10, at: 5 }
  const base = { id: task.id, epoch: 0 }
  return [
    { schema: leaseRequestSchema, value: { op: 'acquire', ...base, claimId: 'c1', durationMs: 500, record } },
    { schema: leaseRequestSchema, value: { op: 'acquire', ...base, claimId: 'c1', durationMs: 500 } },
    { schema: leaseRequestSchema, value: { op: 'renew', ...base, claimId: 'c1', term: 2, durationMs: 500 } },
    { schema: leaseRequestSchema, value: { op: 'release', ...base, claimId: 'c1', term: 2, ran: false } },
    { schema: leaseRequestSchema, value: { op: 'vote', ...base, claimId: 'c1', term: 2, value, result: { out: 'x' }, size: 10, shown: [{ generation: 0, epoch: 0, term: 1, value, sig: 'c2ln', peer: A }] } },
    { schema: leaseRequestSchema, value: { op: 'commit', ...base, cert, result } },
    { schema: leaseRequestSchema, value: { op: 'fail', ...base, claimId: 'c1', term: 2, error: 'boom', unrecoverable: false } },
    { schema: leaseRequestSchema, value: { op: 'install', ...base, record: finished, result } },
    { schema: leaseResponseSchema, value: { status: 'OK', term: 3, expiresAt: 9, attempt: 1, generation: 0, vote: { generation: 0, epoch: 0, term: 1, value, sig: 'c2ln', peer: B }, committed: true } },
    { schema: leaseResponseSchema, value: { status: 'FINISHED', cert, result, record: finished, placement } },
    { schema: recordsRequestSchema, value: { op: 'put', record: finished, result } },
    { schema: recordsRequestSchema, value: { op: 'handoff', record } },
    { schema: recordsRequestSchema, value: { op: 'put-many', items: [{ record }, { record: finished, result }] } },
    { schema: recordsRequestSchema, value: { op: 'offer', items: [{ task, placement, queue: true }] } },
    { schema: recordsRequestSchema, value: { op: 'notify', notices: [{ kind: 'notice', from: A, at: 1, id: task.id, capability: 'echo', event: 'completed', generation: 0, claimId: 'c1', peer: A, result: { out: 'x' }, resultSize: 10, cert }] } }
  ]
}

/** Values a mutation puts in place of another: wrong types, limits, odd strings and numbers. */
const REPLACEMENTS: unknown[] = [
  undefined, null, true, false, 0, -0, -1, 1, 1.5, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER, NaN, Infinity, 3_600_001, 604_800_001,
  '', 'x', 'ab'.repeat(32), 'AB'.repeat(32), 'x'.repeat(65), 'x'.repeat(257), 'x'.repeat(4097), '😀'.repeat(64), '😀'.repeat(65), '\ud800', A, `${A}0`, 'completed', 'bogus',
  [], [1], {}, { extra: 1 }, JSON.parse('{"__proto__": {"x": 1}}'), Object.create({ inherited: 1 }), new Date(0), [[[[[]]]]]
]

/** Every path to an object member or array element in `value`. */
function paths (value: unknown, at: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (typeof value !== 'object' || value === null) return out
  for (const key of Object.keys(value)) {
    const next = [...at, Array.isArray(value) ? Number(key) : key]
    out.push(next)
    paths((value as Record<string, unknown>)[key], next, out)
  }
  return out
}

/** A deep copy of `value` with one change: a member replaced, deleted, or an unknown key added. */
function mutate (value: unknown, rng: Rng): unknown {
  const copy = structuredClone(value) as Record<string, any>
  const all = paths(copy)
  const path = rng.pick(all)
  let parent: any = copy
  for (const key of path.slice(0, -1)) parent = parent[key]
  const last = path[path.length - 1] as string | number
  const kind = rng.int(0, 4)
  if (kind === 0 && !Array.isArray(parent)) delete parent[last]
  else if (kind === 1 && typeof parent[last] === 'object' && parent[last] !== null && !Array.isArray(parent[last])) parent[last][rng.pick(['extra', 'op', 'id', 'term', '__proto__'])] = rng.pick(REPLACEMENTS)
  else if (kind === 2 && Array.isArray(parent[last])) parent[last].push(structuredClone(parent[last][0] ?? 1))
  else parent[last] = rng.pick(REPLACEMENTS)
  return copy
}

describe('fast check against zod', () => {
  it('passes every valid sample as it is, which zod passes unchanged', () => {
    for (const { schema, value } of samples()) {
      expect(schema.safeParse(value).success).toBe(true)
      expect(fastCheck(schema)(value)).toBe(true)
      expect(fastParse(schema, value)).toEqual({ success: true, data: value })
    }
  })

  it('passes nothing zod refuses or changes, over 30,000 mutated requests', () => {
    const rng = new Rng(12)
    let passed = 0
    let refused = 0
    for (let i = 0; i < 30_000; i++) {
      const { schema, value } = rng.pick(samples())
      const mutant = mutate(value, rng)
      const parsed = schema.safeParse(mutant)
      if (!parsed.success) refused++
      if (!fastCheck(schema)(mutant)) continue
      passed++
      expect(parsed.success, JSON.stringify(mutant).slice(0, 300)).toBe(true)
      expect(parsed.data).toEqual(mutant)
    }
    // the mutations did reach both sides: many refused by zod, many still valid and passed fast
    expect(refused).toBeGreaterThan(10_000)
    expect(passed).toBeGreaterThan(2_000)
  })

  it('is not sure of what it cannot compile, and leaves it to zod', () => {
    const transformed = z.object({ n: z.number().transform(n => n + 1) })
    expect(fastCheck(transformed)({ n: 1 })).toBe(false)
    expect(fastParse(transformed, { n: 1 })).toMatchObject({ success: true, data: { n: 2 } })
    const stripping = z.object({ a: z.string() })
    expect(fastCheck(stripping)({ a: 'x', b: 1 })).toBe(false)
    expect(fastParse(stripping, { a: 'x', b: 1 })).toMatchObject({ success: true, data: { a: 'x' } })
    const defaulted = z.object({ a: z.string().default('d') })
    expect(fastCheck(defaulted)({})).toBe(false)
    expect(fastParse(defaulted, {})).toMatchObject({ success: true, data: { a: 'd' } })
    const emailed = z.string().email()
    expect(fastCheck(emailed)('a@b.co')).toBe(false)
    // each of these passed an early form of the check where zod refuses or changes the value
    expect(z.int().safeParse(1.5).success).toBe(false)
    expect(fastCheck(z.int())(1.5)).toBe(false)
    expect(fastCheck(z.email())('nope')).toBe(false)
    expect(fastCheck(z.record(z.enum(['a', 'b']), z.number()))({ a: 1 })).toBe(false)
    expect(fastCheck(z.enum({ A: 0, B: 1, 0: 'A', 1: 'B' } as any))('A')).toBe(false)
    expect(fastCheck(z.object({ toString: z.string().optional() }))({})).toBe(false)
    expect(fastCheck(z.object({ a: z.string().optional().transform(v => v ?? 'd') }))({})).toBe(false)
    expect(fastCheck(z.custom(async () => false))(1)).toBe(false)
  })
})
