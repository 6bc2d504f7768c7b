import { describe, expect, it } from 'vitest'
import { describeEvent } from '../../node/cli/events-client.js'

describe('agentmesh watch: one line an event', () => {
  it('tells a suspended attempt and the signal it waits for, with the signal name made printable', () => {
    const at = Date.UTC(2026, 11, 4, 12, 0, 0, 5)
    expect(describeEvent({ event: 'attempt-suspended', data: { at, attempt: 1, signal: 'approve\nnow' } })).toBe('12:00:00.005  suspended   attempt 1: waits for the signal approve now')
    // an earlier wait's signal is not in the record any more
    expect(describeEvent({ event: 'attempt-suspended', data: { at, attempt: 2 } })).toBe('12:00:00.005  suspended   attempt 2')
  })
  it('gives a redrive, whose time the record does not keep, no time rather than the time it was read; a live state its arrival', () => {
    expect(describeEvent({ event: 'redriven', data: { id: 'a'.repeat(64), generation: 1, after: 'dead' } })).toBe(`${' '.repeat(12)}  redriven    dead, run again as generation 1`)
    const before = new Date().toISOString().slice(11, 19)
    const line = describeEvent({ event: 'state', data: { id: 'b'.repeat(64), capability: 'echo', state: 'pending' } })
    const after = new Date().toISOString().slice(11, 19)
    expect([before, after]).toContain(line.slice(0, 8))
  })
})
