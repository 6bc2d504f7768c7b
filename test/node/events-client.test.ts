import { describe, expect, it } from 'vitest'
import { describeEvent } from '../../node/cli/events-client.js'

describe('agentmesh watch: one line an event', () => {
  it('tells a suspended attempt and the signal it waits for, with the signal name made printable', () => {
    const at = Date.UTC(2026, 11, 4, 12, 0, 0, 5)
    expect(describeEvent({ event: 'attempt-suspended', data: { at, attempt: 1, signal: 'approve\nnow' } })).toBe('12:00:00.005  suspended   attempt 1: waits for the signal approve now')
    // an earlier wait's signal is not in the record any more
    expect(describeEvent({ event: 'attempt-suspended', data: { at, attempt: 2 } })).toBe('12:00:00.005  suspended   attempt 2')
  })
})
