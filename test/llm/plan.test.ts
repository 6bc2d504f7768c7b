import { describe, expect, it } from 'vitest'
import { parsePlan } from '../../node/llm/plan.js'

const offered = new Set(['echo', 'sleep'])
const check = (steps: unknown[]): ReturnType<typeof parsePlan> => parsePlan(JSON.stringify({ steps }), offered)

describe('a plan\'s $ref', () => {
  it('takes a reference to a step it depends on, directly or through another', () => {
    expect(check([
      { id: 'a', capability: 'sleep', input: { ms: 1 } },
      { id: 'b', capability: 'echo', input: { got: '$ref:a' }, dependsOn: ['a'] },
      { id: 'c', capability: 'echo', input: ['$ref:a', { deep: '$ref:b' }], dependsOn: ['b'] }
    ])).toMatchObject({ ok: true })
  })

  it('refuses a reference to a step that may not have run yet, or to no step: it became nothing', () => {
    // run in parallel with its target, the reference read no result and the step's input lost it
    expect(check([
      { id: 's1', capability: 'sleep', input: { ms: 1500 } },
      { id: 's2', capability: 'echo', input: { got: '$ref:s1' } }
    ])).toEqual({ ok: false, error: 'step s2 refers to step s1 ("$ref:s1") but does not depend on it: add "s1" to its dependsOn' })
    expect(check([{ id: 's1', capability: 'echo', input: '$ref:zzz' }])).toEqual({ ok: false, error: 'step s1 refers to unknown step zzz ("$ref:zzz")' })
    // a step that runs later is no dependency either
    expect(check([
      { id: 'a', capability: 'echo', input: '$ref:b' },
      { id: 'b', capability: 'echo', input: 1, dependsOn: ['a'] }
    ])).toMatchObject({ ok: false, error: expect.stringMatching(/step a refers to step b .* does not depend on it/) })
  })
})
