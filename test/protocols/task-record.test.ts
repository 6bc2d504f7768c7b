import { beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { MAX_JSON_DEPTH, NOT_JSON, copyJson, isJsonValue, jsonValue } from '../../protocols/task/json-value.js'
import { MAX_ATTEMPTS_KEPT, STEP_TERMS_KEY, canonicalJson, certify, cloneJson, hasValidFinal, hasValidId, isValidCertificate, makeTask, membersOf, mergeRecords, newRecord, outcomeKey, randomHex, resultHash, sameValue, stateOf, statementBytes, summarize, taskId, taskRecordSchema } from '../../protocols/task/index.js'
import type { Certificate, FinalState, FinalValue, Placement, TaskRecord } from '../../protocols/task/index.js'
import { certBy, makePeer } from '../helpers/peers.js'
import type { Peer } from '../helpers/peers.js'

const PEER = '12D3KooWRMSpWgiKpsSEfYUBmPo5MYujBYuKuS3z7ApwDA73eJs6'
const OTHER = '12D3KooWBTn2n5nxGB6qhtWcD3HJjam2EZBTNoj7kRMQEBdYohwg'

function task (input: unknown = { a: 1 }, idempotencyKey?: string): TaskRecord['task'] {
  return makeTask({ capability: 'echo', input, submitter: PEER, idempotencyKey, maxAttempts: 3, timeoutMs: 1000, deadline: 10_000, now: 1 })
}

/** An object that holds itself: no JSON form. */
function cyclic (): Record<string, unknown> {
  const value: Record<string, unknown> = {}
  value.self = value
  return value
}

/** Arrays and objects nested MAX_JSON_DEPTH deep, the most a JSON value may. */
function nestedToLimit (): unknown {
  let deep: unknown = 1
  for (let i = 0; i < MAX_JSON_DEPTH; i++) deep = i % 2 === 0 ? [deep] : { k: deep }
  return deep
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

  it('draws random ids from a refilled pool: the asked length, never the same twice', () => {
    const seen = new Set<string>()
    // past several refills of the 4 KiB pool, and one draw larger than the pool
    for (let i = 0; i < 3_000; i++) {
      const hex = randomHex(i % 3 === 0 ? 16 : 8)
      expect(hex).toMatch(i % 3 === 0 ? /^[0-9a-f]{32}$/ : /^[0-9a-f]{16}$/)
      seen.add(hex)
    }
    expect(seen.size).toBe(3_000)
    expect(randomHex(5_000)).toMatch(/^[0-9a-f]{10000}$/)
  })

  it('copies a JSON value deeply, and anything else as a structured clone', () => {
    const value = { a: [1, { b: 'x' }], c: null }
    const copy = cloneJson(value)
    expect(copy).toEqual(value)
    copy.a.push(2)
    expect(value.a).toHaveLength(2)
    const date = new Date(0)
    expect(cloneJson({ date }).date).toEqual(date)
  })

  it('writes the same canonical bytes as the form every peer so far hashed (ids and signatures must not change)', () => {
    // the earlier implementation, kept here as the reference
    const reference = (value: unknown): string => {
      if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
      if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`
    }
    let seed = 7
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    const keys = ['a', 'B', 'é', '\u{1F600}', 'z\n"', '10', '2', '', 'aa', '\uffff', '\u00e9t\u00e9']
    const gen = (depth: number): unknown => {
      switch (rand(depth > 3 ? 6 : 8)) {
        case 0: return null
        case 1: return rand(2) === 0
        case 2: return [0, -0, 1.5, -3e-7, 2 ** 53, 1e21, 123456789][rand(7)]
        case 3: return ['', 'x', 'ü\u2028', '"\\', '\u0000\u001f'][rand(5)]
        case 4: return undefined
        case 5: return keys[rand(keys.length)]
        case 6: return Array.from({ length: rand(4) }, () => gen(depth + 1))
        default: return Object.fromEntries(Array.from({ length: rand(5) }, () => [keys[rand(keys.length)], gen(depth + 1)]))
      }
    }
    for (let i = 0; i < 2_000; i++) {
      const value = gen(0)
      expect(canonicalJson(value)).toBe(reference(value))
    }
    // objects past the in-place sort's size take the built-in sort: the same order
    for (let i = 0; i < 200; i++) {
      const wide = Object.fromEntries(Array.from({ length: 20 + rand(40) }, (_, k) => [`${keys[rand(keys.length)]}${rand(100)}${k % 3 === 0 ? '\u{1F600}' : ''}`, gen(2)]))
      expect(canonicalJson(wide)).toBe(reference(wide))
    }
    expect(canonicalJson({ z: [1, undefined, { y: undefined, x: 'é' }], a: true, é: null })).toBe('{"a":true,"z":[1,null,{"x":"é"}],"é":null}')
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError)
  })

  it('checks JSON values in place as zod\'s z.json() does, without copying; deeper than JSON.stringify writes, or with a __proto__ key, refused', () => {
    // xorshift32: the low bits of a plain LCG repeat, and two draws in a row never reached the odd values
    let seed = 11
    const rand = (n: number): number => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n }
    class Point { x = 1 }
    const odd = [undefined, Number.NaN, Infinity, -Infinity, () => 1, Symbol('s'), 10n, new Date(0), new Map(), new Point(), /x/, new Uint8Array(2)]
    const gen = (depth: number): unknown => {
      switch (rand(depth > 3 ? 6 : 8)) {
        case 0: return null
        case 1: return rand(2) === 0
        case 2: return [0, -0, 1.5, 2 ** 53, 1e21][rand(5)]
        case 3: return ['', 'x', '\u0000', '__proto__'][rand(4)]
        // now and then a value that is not JSON, at any depth
        case 4: return rand(6) === 0 ? odd[rand(odd.length)] : 'plain'
        case 5: return Object.create(null)
        case 6: return Array.from({ length: rand(4) }, () => gen(depth + 1))
        default: return Object.fromEntries(Array.from({ length: rand(4) }, (_, i) => [`k${i}`, gen(depth + 1)]))
      }
    }
    const reference = z.json()
    let rejected = 0
    for (let i = 0; i < 3_000; i++) {
      const value = gen(0)
      const ok = reference.safeParse(value).success
      if (!ok) rejected++
      expect(isJsonValue(value), `value ${i}`).toBe(ok)
    }
    // both kinds were generated
    expect(rejected).toBeGreaterThan(50)
    expect(rejected).toBeLessThan(2_900)
    for (const value of odd) expect(isJsonValue([{ a: value }])).toBe(false)
    // the parsed value is the value itself, where zod copies every object
    const input = { a: [{ b: 1 }] }
    expect(jsonValue().parse(input)).toBe(input)
    // refused where zod's dropped the key: an own __proto__ sets the prototype of what it is assigned into
    expect(isJsonValue(JSON.parse('{"a": [{"__proto__": {"x": 1}}]}'))).toBe(false)
    expect(isJsonValue({ a: '__proto__' })).toBe(true)
    // a cycle is refused (it has no JSON form), and so is nesting deeper than JSON.stringify writes,
    // without overflowing the stack however deep it goes
    expect(isJsonValue(cyclic())).toBe(false)
    let deep = nestedToLimit()
    expect(isJsonValue(deep)).toBe(true)
    expect(() => JSON.stringify(deep)).not.toThrow()
    expect(isJsonValue([deep])).toBe(false)
    for (let i = 0; i < 200_000; i++) deep = [deep]
    expect(isJsonValue(deep)).toBe(false)
    expect(jsonValue().safeParse({ a: Number.NaN }).error?.issues[0]?.message).toMatch(/JSON value/)
  })

  it('copies this node\'s own requests as the wire would carry them, and refuses what has no JSON form', () => {
    const request = { op: 'vote', result: { a: [1, { b: 'x' }], gone: undefined as unknown }, shown: undefined as unknown }
    const copy = copyJson(request) as typeof request
    // an undefined member is left out, as JSON.stringify leaves it out on the wire
    expect(copy).toEqual(JSON.parse(JSON.stringify(request)))
    expect(Object.keys(copy)).toEqual(['op', 'result'])
    // a copy: the agent changing its object afterwards changes nothing
    ;(request.result.a[1] as { b: string }).b = 'changed'
    expect((copy.result.a[1] as { b: string }).b).toBe('x')
    class Point { x = 1 }
    for (const odd of [undefined, Number.NaN, Infinity, () => 1, Symbol('s'), 10n, new Date(0), new Map(), new Point(), /x/, new Uint8Array(2)]) {
      expect(copyJson({ r: [odd] })).toBe(NOT_JSON)
    }
    expect(copyJson(JSON.parse('{"a": {"__proto__": {"x": 1}}}'))).toBe(NOT_JSON)
    expect(copyJson(cyclic())).toBe(NOT_JSON)
    const deep = nestedToLimit()
    expect(copyJson(deep)).toEqual(deep)
    expect(copyJson([deep])).toBe(NOT_JSON)
    // null-prototype objects are plain JSON, as isJsonValue takes them
    expect(copyJson(Object.assign(Object.create(null), { k: 1 }))).toEqual({ k: 1 })
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

/** Members of epoch 0 (A, B, C) and epoch 1 (A, B, D); E is in neither. */
const peers = {} as Record<'A' | 'B' | 'C' | 'D' | 'E', Peer>
const t = task({ merge: true }, 'merge')

beforeAll(async () => {
  for (const name of ['A', 'B', 'C', 'D', 'E'] as const) peers[name] = await makePeer()
})

const P0 = (): Placement => ({ epoch: 0, members: [peers.A.id, peers.B.id, peers.C.id] })
const P1 = (): Placement => ({ epoch: 1, members: [peers.A.id, peers.B.id, peers.D.id] })

function cert (value: FinalValue, signers: Peer[], o: { id?: string, generation?: number, epoch?: number, term?: number } = {}): Certificate {
  return certBy(o.id ?? t.id, value, signers, o)
}

function finalOf (c: Certificate, at: number, extra: Partial<FinalState> = {}): FinalState {
  return { state: c.value.state, at, generation: c.generation, ...(c.value.reason === undefined ? {} : { reason: c.value.reason }), ...(c.value.claimId === undefined ? {} : { claimId: c.value.claimId }), cert: c, ...extra }
}

const COMPLETED = (): FinalValue => ({ state: 'completed', claimId: 'c2', resultHash: resultHash({ out: 1 }) })
const DEAD: FinalValue = { state: 'dead', reason: 'failed 3 of 3 attempts' }

/** Copies of one task as different replicas and moments hold them: placements, moves, certified finals. */
function copies () {
  const base = newRecord(t, P0(), 1)
  const running: TaskRecord = { ...base, attempts: [{ claimId: 'c1', generation: 0, peer: PEER, startedAt: 2, outcome: 'running' }], updatedAt: 2 }
  const failed: TaskRecord = { ...base, attempts: [{ claimId: 'c1', generation: 0, peer: PEER, startedAt: 2, endedAt: 3, outcome: 'failed', error: 'x' }], notBefore: 5, updatedAt: 3 }
  const retry: TaskRecord = { ...base, attempts: [{ claimId: 'c2', generation: 0, peer: OTHER, startedAt: 6, outcome: 'running' }], journal: { step: 'a' }, updatedAt: 6 }
  // the retry failed too: a later backoff, which wins over the earlier one in any order
  const retryFailed: TaskRecord = { ...base, attempts: [{ claimId: 'c2', generation: 0, peer: OTHER, startedAt: 6, endedAt: 8, outcome: 'failed', error: 'y' }], notBefore: 9, updatedAt: 8 }
  const raced: TaskRecord = { ...base, attempts: [{ claimId: 'c2', generation: 0, peer: OTHER, startedAt: 6, outcome: 'running' }], journal: { step: 'b', other: 1 }, updatedAt: 6 }
  const completed: TaskRecord = { ...base, attempts: [{ claimId: 'c2', generation: 0, peer: OTHER, startedAt: 6, endedAt: 7, outcome: 'completed' }], final: finalOf(cert(COMPLETED(), [peers.A, peers.B]), 7, { peer: OTHER }), updatedAt: 7 }
  // the same outcome stored elsewhere: its own clock, and a certificate of other signers
  const completedElsewhere: TaskRecord = { ...completed, attempts: [{ ...completed.attempts[0]!, endedAt: 9 }], final: finalOf(cert(COMPLETED(), [peers.B, peers.C]), 8, { peer: OTHER, resultSize: 3 }) }
  // moved to epoch 1 before it finished; the certificate of epoch 0 still checks against `previous`
  const moved: TaskRecord = { ...running, placement: P1(), previous: [P0()], updatedAt: 10 }
  const movedCompleted: TaskRecord = { ...completed, placement: P1(), previous: [P0()], updatedAt: 11 }
  const dead: TaskRecord = { ...failed, final: finalOf(cert(DEAD, [peers.A, peers.C]), 4), updatedAt: 4 }
  const redriven: TaskRecord = { ...base, generation: 1, attempts: [{ claimId: 'c3', generation: 1, peer: OTHER, startedAt: 12, outcome: 'running' }], droppedGeneration: 0, updatedAt: 12 }
  const redrivenDone: TaskRecord = { ...redriven, final: finalOf(cert({ state: 'canceled', reason: 'canceled' }, [peers.A, peers.D], { generation: 1, epoch: 1 }), 13), placement: P1(), previous: [P0()], updatedAt: 13 }
  // a later generation no redrive made (a peer's lie): it must not wipe a completed or canceled end
  const laterUnfinished: TaskRecord = { ...base, generation: 3, updatedAt: 20 }
  // steps with the leases they were written under: a holder granted by all three (term 1), frozen
  // and heard by C alone; the next, granted by A and B (term 2); a third, by B and C
  const terms = (t: Partial<Record<'A' | 'B' | 'C', number>>): Record<string, number> => Object.fromEntries(Object.entries(t).map(([k, v]) => [peers[k as 'A'].id, v]))
  const frozenStep: TaskRecord = { ...running, journal: { step: 'a', [STEP_TERMS_KEY]: { step: terms({ A: 1, B: 1, C: 1 }) } }, updatedAt: 14 }
  const nextStep: TaskRecord = { ...running, journal: { step: 'z', [STEP_TERMS_KEY]: { step: terms({ A: 2, B: 2 }) } }, updatedAt: 15 }
  const thirdStep: TaskRecord = { ...running, journal: { step: 'z', more: 2, [STEP_TERMS_KEY]: { step: terms({ A: 2, B: 2 }), more: terms({ B: 3, C: 2 }) } }, updatedAt: 16 }
  return { base, running, failed, retry, retryFailed, raced, completed, completedElsewhere, moved, movedCompleted, dead, redriven, redrivenDone, laterUnfinished, frozenStep, nextStep, thirdStep }
}

describe('record merge', () => {
  it('every copy used below is a valid record, and every final in them is certified', () => {
    for (const [name, r] of Object.entries(copies())) {
      expect(taskRecordSchema.safeParse(r).success, name).toBe(true)
      if (r.final !== undefined) expect(hasValidFinal(r), name).toBe(true)
    }
  })

  it('is commutative, associative and idempotent, with placements, moves and certified finals', () => {
    const named = copies()
    const all = Object.values(named)
    const names = new Map(Object.entries(named).map(([k, v]) => [v, k]))
    const base = named.base
    for (const a of all) {
      // idempotent: merging a copy with itself is the copy (up to the normal form a merge gives)
      expect(mergeRecords(a, a)).toEqual(mergeRecords(a, base))
      expect(mergeRecords(mergeRecords(a, base), a)).toEqual(mergeRecords(a, base))
      for (const b of all) {
        const ab = mergeRecords(a, b)
        expect(ab).toEqual(mergeRecords(b, a))
        expect(mergeRecords(ab, b)).toEqual(ab)
        expect(taskRecordSchema.safeParse(ab).success).toBe(true)
        for (const c of all) expect(mergeRecords(ab, c), `${names.get(a)} ${names.get(b)} ${names.get(c)}`).toEqual(mergeRecords(a, mergeRecords(b, c)))
      }
    }
  })

  it('keeps at most MAX_ATTEMPTS_KEPT attempts, dropping released partial claims first, alike in any order', () => {
    const placement: Placement = { epoch: 0, members: [PEER] }
    const attempts = (prefix: string, n: number, outcome: 'released' | 'failed', at: number): TaskRecord['attempts'] =>
      Array.from({ length: n }, (_, i) => ({ claimId: `${prefix}${i}`, generation: 0, peer: PEER, startedAt: at + i, outcome }))
    const t = task({ churn: true })
    // two members' copies after long churn: 700 released partial claims each, and the failed attempts that count
    const a: TaskRecord = { ...newRecord(t, placement, 1), attempts: [...attempts('a', 700, 'released', 100), ...attempts('fa', 2, 'failed', 5000)] }
    const b: TaskRecord = { ...newRecord(t, placement, 1), attempts: [...attempts('b', 700, 'released', 50), { claimId: 'run', generation: 0, peer: OTHER, startedAt: 1, outcome: 'running' }] }
    const ab = mergeRecords(a, b)
    expect(ab.attempts).toHaveLength(MAX_ATTEMPTS_KEPT)
    expect(taskRecordSchema.safeParse(ab).success).toBe(true)
    expect(ab).toEqual(mergeRecords(b, a))
    // every attempt that counts or runs is kept, and the newest released ones
    expect(ab.attempts.filter(x => x.outcome !== 'released').map(x => x.claimId).sort()).toEqual(['fa0', 'fa1', 'run'])
    expect(ab.attempts.some(x => x.claimId === 'a699')).toBe(true)
    expect(ab.attempts.some(x => x.claimId === 'b0')).toBe(false)
    expect(mergeRecords(ab, a)).toEqual(ab)
  })

  it('never produces a final that is not certified for the merged record', () => {
    const all = Object.values(copies())
    for (const a of all) {
      for (const b of all) {
        const m = mergeRecords(a, b)
        if (m.final !== undefined) expect(hasValidFinal(m)).toBe(true)
      }
    }
  })

  it('ends completed whatever order the pieces arrive in, keeping a certificate', () => {
    const { base, running, failed, retry, completed, completedElsewhere, moved } = copies()
    const orders = [[running, failed, retry, completed], [completed, retry, failed, running], [failed, completedElsewhere, moved, retry, running, completed]]
    const results = orders.map(order => order.reduce((acc, r) => mergeRecords(acc, r), base))
    for (const merged of results) {
      expect(stateOf(merged)).toBe('completed')
      expect(merged.attempts.map(a => a.outcome)).toEqual(['failed', 'completed'])
      expect(hasValidFinal(merged)).toBe(true)
    }
    // two certificates of the one outcome: every order picks the same copy
    expect(mergeRecords(completed, completedElsewhere).final).toEqual(mergeRecords(completedElsewhere, completed).final)
  })

  it('a final copy names no holder, and shows an attempt it last saw running as the certificate ends it', () => {
    const { running, retry, completed } = copies()
    // a copy that saw the first attempt start, then only the certificate of the second's result
    const stale: TaskRecord = { ...running, final: completed.final, updatedAt: 7 }
    expect(summarize(running)).toMatchObject({ holder: PEER, history: [{ attempt: 'c1', outcome: 'running' }] })
    expect(summarize(stale)).toMatchObject({ state: 'completed', holder: undefined, history: [{ attempt: 'c1', outcome: 'expired' }] })
    // the certified claim's own attempt, last seen running
    expect(summarize({ ...retry, final: completed.final, updatedAt: 7 })).toMatchObject({ holder: undefined, history: [{ attempt: 'c2', outcome: 'completed' }] })
  })

  it('keeps the newest placement and the ones it moved from', () => {
    const { running, moved, completed } = copies()
    const m = mergeRecords(running, moved)
    expect(m.placement).toEqual(P1())
    expect(m.previous).toEqual([P0()])
    expect(membersOf(m, 0)).toEqual(P0().members)
    expect(membersOf(m, 1)).toEqual(P1().members)
    expect(membersOf(m, 2)).toBeUndefined()
    // a final certified in epoch 0, merged into a copy that moved on, stays valid
    const late = mergeRecords(moved, completed)
    expect(late.placement).toEqual(P1())
    expect(hasValidFinal(late)).toBe(true)
  })

  it('keeps the latest retry time of one generation, whatever the order', () => {
    const { failed, retryFailed, redriven } = copies()
    expect(mergeRecords(failed, retryFailed).notBefore).toBe(9)
    expect(mergeRecords(retryFailed, failed).notBefore).toBe(9)
    // a newer generation starts without the old backoff
    expect(mergeRecords(retryFailed, redriven).notBefore).toBeUndefined()
  })

  it('is commutative even for two copies whose task bodies differ outside the id', () => {
    const { base, running } = copies()
    const resubmitted: TaskRecord = { ...base, task: { ...base.task, createdAt: base.task.createdAt + 5, deadline: base.task.deadline + 5 } }
    expect(hasValidId(resubmitted.task)).toBe(true)
    expect(resubmitted.task).not.toEqual(base.task)
    const ab = mergeRecords(base, resubmitted)
    expect(ab).toEqual(mergeRecords(resubmitted, base))
    // one of the two bodies, whole: not a mix of fields
    expect([base.task, resubmitted.task]).toContainEqual(ab.task)
    // and the same body whatever else the copies hold, in any order and grouping
    const moreA = mergeRecords(mergeRecords(running, resubmitted), base)
    const moreB = mergeRecords(base, mergeRecords(resubmitted, running))
    expect(moreA).toEqual(moreB)
    expect(moreA.task).toEqual(ab.task)
  })

  it('resolves journal entries two holders wrote differently the same way everywhere', () => {
    const { retry, raced } = copies()
    expect(mergeRecords(retry, raced).journal).toEqual(mergeRecords(raced, retry).journal)
    expect(Object.keys(mergeRecords(retry, raced).journal ?? {})).toEqual(['other', 'step'])
  })

  it('resolves a step two holders wrote differently to the later lease\'s value, told by a member that granted both, whichever value is smaller', () => {
    const { frozenStep, nextStep, thirdStep, retry } = copies()
    for (const [x, y] of [[frozenStep, nextStep], [nextStep, frozenStep], [frozenStep, thirdStep], [thirdStep, frozenStep]] as const) expect(mergeRecords(x, y).journal?.step).toBe('z')
    expect(mergeRecords(frozenStep, thirdStep).journal?.[STEP_TERMS_KEY]).toEqual(thirdStep.journal?.[STEP_TERMS_KEY])
    // a step kept without its lease (written before the terms) yields to one that names its lease
    expect(mergeRecords(retry, frozenStep).journal?.step).toBe('a')
    expect(mergeRecords(nextStep, retry).journal?.step).toBe('z')
  })

  it('merges a step key an object inherits ("constructor", "toString") or "__proto__" as any other key', () => {
    const { running } = copies()
    const one: TaskRecord = { ...running, journal: JSON.parse('{"constructor":1,"toString":"t","__proto__":3}') }
    const other: TaskRecord = { ...running, journal: { other: 2 } }
    for (const merged of [mergeRecords(one, other), mergeRecords(other, one)]) {
      expect(JSON.parse(JSON.stringify(merged.journal))).toEqual(JSON.parse('{"__proto__":3,"constructor":1,"other":2,"toString":"t"}'))
      expect(Object.getPrototypeOf(merged.journal)).toBe(Object.prototype)
    }
  })

  it('derives the state from attempts and the final state', () => {
    const { base, running, failed, retry } = copies()
    expect(stateOf(base)).toBe('pending')
    expect(stateOf(running)).toBe('running')
    expect(stateOf(failed)).toBe('failed')
    expect(stateOf(mergeRecords(failed, retry))).toBe('running')
  })

  it('keeps a completed or canceled end against any later generation: only a dead task is redriven', () => {
    const { completed, redrivenDone, laterUnfinished, dead } = copies()
    for (const over of [completed, redrivenDone]) {
      expect(mergeRecords(over, laterUnfinished).final).toEqual(over.final)
      expect(mergeRecords(laterUnfinished, over).generation).toBe(over.generation)
    }
    expect(mergeRecords(dead, laterUnfinished).final).toBeUndefined()
  })

  it('lets a redrive (a newer generation) supersede a dead end', () => {
    const { dead, redriven, redrivenDone } = copies()
    expect(stateOf(dead)).toBe('dead')
    expect(stateOf(mergeRecords(dead, redriven))).toBe('running')
    expect(stateOf(mergeRecords(redriven, dead))).toBe('running')
    expect(mergeRecords(dead, redriven).final).toBeUndefined()
    expect(stateOf(mergeRecords(dead, redrivenDone))).toBe('canceled')
    expect(mergeRecords(dead, redrivenDone).droppedGeneration).toBe(0)
  })
})

describe('certified finals', () => {
  const record = (): TaskRecord => newRecord(t, P0(), 1)
  const withFinal = (f: FinalState, r: TaskRecord = record()): TaskRecord => ({ ...r, final: f })

  it('a final signed by a majority of the placement is valid', () => {
    expect(hasValidFinal(withFinal(finalOf(cert(DEAD, [peers.A, peers.B]), 5)))).toBe(true)
    expect(hasValidFinal(withFinal(finalOf(cert(DEAD, [peers.A, peers.B, peers.C]), 5)))).toBe(true)
    expect(hasValidFinal(record())).toBe(false)
  })

  const bad: Array<[string, () => TaskRecord]> = [
    ['signed by 1 of 3', () => withFinal(finalOf(cert(DEAD, [peers.A]), 5))],
    ['signed by a non-member', () => withFinal(finalOf(cert(DEAD, [peers.A, peers.E]), 5))],
    ['signed twice by one member', () => withFinal(finalOf(cert(DEAD, [peers.A, peers.A]), 5))],
    ['with a signature over another state', () => withFinal(finalOf({ ...cert(DEAD, [peers.A, peers.B]), value: { state: 'canceled', reason: DEAD.reason } }, 5))],
    ['with a signature over another claim', () => withFinal(finalOf({ ...cert(COMPLETED(), [peers.A, peers.B]), value: { ...COMPLETED(), claimId: 'c9' } }, 5))],
    ['with a signature over another result hash', () => withFinal(finalOf({ ...cert(COMPLETED(), [peers.A, peers.B]), value: { ...COMPLETED(), resultHash: resultHash({ out: 2 }) } }, 5))],
    ['with a signature over no claim, relabelled to name one', () => withFinal(finalOf({ ...cert(DEAD, [peers.A, peers.B]), value: { ...DEAD, claimId: 'c1' } }, 5))],
    ['with a signature over another term', () => { const c = cert(DEAD, [peers.A, peers.B]); return withFinal(finalOf({ ...c, votes: c.votes.map(v => ({ ...v, term: 7 })) }, 5)) }],
    ['with a garbled signature', () => { const c = cert(DEAD, [peers.A, peers.B]); return withFinal(finalOf({ ...c, votes: c.votes.map(v => ({ ...v, sig: Buffer.from('x'.repeat(64)).toString('base64') })) }, 5)) }],
    ['of another task', () => withFinal(finalOf(cert(DEAD, [peers.A, peers.B], { id: task({ other: true }, 'o').id }), 5))],
    ['relabelled from another task', () => withFinal(finalOf({ ...cert(DEAD, [peers.A, peers.B], { id: task({ other: true }, 'o').id }), id: t.id }, 5))],
    ['of another generation than the final', () => withFinal({ ...finalOf(cert(DEAD, [peers.A, peers.B], { generation: 1 }), 5), generation: 0 })],
    ['naming another state than the final', () => withFinal({ ...finalOf(cert(DEAD, [peers.A, peers.B]), 5), state: 'completed' })],
    ['naming another claim than the final', () => withFinal({ ...finalOf(cert(COMPLETED(), [peers.A, peers.B]), 5), claimId: 'c9' })],
    ['of an epoch the record does not know', () => withFinal(finalOf(cert(DEAD, [peers.A, peers.B], { epoch: 1 }), 5))],
    ['of the new epoch, signed by old members only', () => withFinal(finalOf(cert(DEAD, [peers.C, peers.E], { epoch: 1 }), 5), { ...record(), placement: P1(), previous: [P0()] })]
  ]

  it.each(bad)('a final with a certificate %s is not valid', (_name, make) => {
    const r = make()
    expect(hasValidFinal(r)).toBe(false)
  })

  it('the reason is not signed: a certificate whose reason changed after signing is still valid', () => {
    const edited = { ...cert(DEAD, [peers.A, peers.B]), value: { state: 'dead' as const, reason: 'edited after signing' } }
    expect(hasValidFinal(withFinal(finalOf(edited, 5)))).toBe(true)
    const dropped = { ...cert(DEAD, [peers.A, peers.B]), value: { state: 'dead' as const } }
    expect(hasValidFinal(withFinal(finalOf(dropped, 5)))).toBe(true)
    const completed = cert(COMPLETED(), [peers.A, peers.B])
    expect(hasValidFinal(withFinal(finalOf({ ...completed, value: { ...COMPLETED(), reason: 'a note' } }, 5)))).toBe(true)
  })

  it('signs the outcome (state, claim, result hash), never the reason', () => {
    const at = { id: t.id, generation: 0, epoch: 0, term: 1 }
    const bytes = (value: FinalValue): string => Buffer.from(statementBytes({ ...at, value })).toString()
    expect(bytes({ state: 'dead', reason: 'unclaimed' })).toBe(bytes({ state: 'dead', reason: 'failed 3 of 3 attempts' }))
    expect(bytes({ state: 'dead', reason: 'unclaimed' })).toBe(bytes({ state: 'dead' }))
    expect(outcomeKey({ state: 'dead', reason: 'unclaimed' })).toBe(outcomeKey({ state: 'dead', reason: 'deadline passed' }))
    expect(sameValue({ state: 'dead', reason: 'unclaimed' }, { state: 'dead', reason: 'deadline passed' })).toBe(true)
    // every part of the outcome, and every part of the statement, is signed
    const distinct = [
      bytes(DEAD),
      bytes({ state: 'canceled', reason: DEAD.reason }),
      bytes({ ...DEAD, claimId: 'c1' }),
      bytes(COMPLETED()),
      bytes({ ...COMPLETED(), claimId: 'c9' }),
      bytes({ ...COMPLETED(), resultHash: resultHash({ out: 2 }) }),
      Buffer.from(statementBytes({ ...at, term: 2, value: DEAD })).toString(),
      Buffer.from(statementBytes({ ...at, epoch: 1, value: DEAD })).toString(),
      Buffer.from(statementBytes({ ...at, generation: 1, value: DEAD })).toString()
    ]
    expect(new Set(distinct).size).toBe(distinct.length)
    const keys = [outcomeKey(DEAD), outcomeKey({ state: 'canceled' }), outcomeKey({ ...DEAD, claimId: 'c1' }), outcomeKey(COMPLETED()), outcomeKey({ ...COMPLETED(), claimId: 'c9' }), outcomeKey({ ...COMPLETED(), resultHash: resultHash({ out: 2 }) })]
    expect(new Set(keys).size).toBe(keys.length)
  })

  it('writes a statement as the canonical JSON of its fields (the bytes every peer signed so far)', () => {
    const values: FinalValue[] = [DEAD, { state: 'canceled' }, COMPLETED(), { ...COMPLETED(), claimId: 'a"\\\u2028é' }, { state: 'dead', claimId: '' }, { state: 'completed', resultHash: resultHash(null) }]
    for (const value of values) {
      for (const at of [{ id: t.id, generation: 0, epoch: 0, term: 1 }, { id: t.id, generation: 12, epoch: 3, term: 2 ** 40 }]) {
        const { state, claimId, resultHash: hash } = value
        const reference = `agentmesh/final/1\n${canonicalJson({ id: at.id, generation: at.generation, epoch: at.epoch, term: at.term, value: { state, claimId, resultHash: hash } })}`
        expect(Buffer.from(statementBytes({ ...at, value })).toString()).toBe(reference)
      }
    }
    expect(() => statementBytes({ id: t.id, generation: Number.NaN, epoch: 0, term: 1, value: DEAD })).toThrow(TypeError)
  })

  it('a certificate checked once does not vouch for another that spells the same fields differently', () => {
    const good = cert(DEAD, [peers.A, peers.B])
    expect(hasValidFinal(withFinal(finalOf(good, 5)))).toBe(true)
    // one vote whose signature smuggles the second vote: a key joined with separators would match
    const [a, b] = good.votes as [Certificate['votes'][number], Certificate['votes'][number]]
    const smuggled = { ...good, votes: [{ ...a, sig: `${a.sig};${b.peer},${b.term},${b.sig}` }] }
    expect(hasValidFinal(withFinal(finalOf(smuggled, 5)))).toBe(false)
  })

  it('two votes that differ only in their reason make one certificate', () => {
    const a = cert({ state: 'dead', reason: 'unclaimed' }, [peers.A])
    const b = cert({ state: 'dead', reason: 'failed 3 of 3 attempts' }, [peers.B])
    const made = certify(t.id, 0, 0, a.value, [...a.votes, ...b.votes], P0().members)
    expect(made).toBeDefined()
    expect(made!.votes.map(v => v.peer)).toEqual([peers.A.id, peers.B.id].sort())
    expect(hasValidFinal(withFinal(finalOf(made!, 5)))).toBe(true)
    // votes for two outcomes do not
    const c = cert({ state: 'canceled', reason: 'canceled' }, [peers.B])
    expect(isValidCertificate({ ...a, votes: [...a.votes, ...c.votes].sort((x, y) => x.peer < y.peer ? -1 : 1) }, P0().members)).toBe(false)
  })

  it('a certificate of an earlier epoch checks against that epoch\'s members', () => {
    const moved = { ...record(), placement: P1(), previous: [P0()] }
    expect(hasValidFinal(withFinal(finalOf(cert(DEAD, [peers.B, peers.C]), 5), moved))).toBe(true)
    expect(hasValidFinal(withFinal(finalOf(cert(DEAD, [peers.B, peers.D], { epoch: 1 }), 5), moved))).toBe(true)
    // D was not a member of epoch 0
    expect(hasValidFinal(withFinal(finalOf(cert(DEAD, [peers.B, peers.D]), 5), moved))).toBe(false)
    expect(isValidCertificate(cert(DEAD, [peers.B, peers.D]), P1().members)).toBe(true)
  })
})
