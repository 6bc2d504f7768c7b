import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Repeater } from '../../node/tasks/repeater.js'
import type { Logger } from '@libp2p/interface'

const quiet = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false, newScope: () => quiet }) as unknown as Logger

describe('Repeater', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('hurry brings a far-off round forward to the interval it reads now', async () => {
    let intervalMs = 10_000
    let rounds = 0
    const r = new Repeater('test', () => intervalMs, async () => { rounds++ }, quiet)
    r.start()
    await vi.advanceTimersByTimeAsync(1_000)
    intervalMs = 100
    r.hurry()
    await vi.advanceTimersByTimeAsync(150)
    expect(rounds).toBe(1)
    await r.stop()
  })

  it('hurry leaves a round that is due sooner alone, does nothing during a round or after stop, and never makes a second chain', async () => {
    let intervalMs = 1_000
    let rounds = 0
    let finish = (): void => {}
    const r = new Repeater('test', () => intervalMs, async () => { rounds++; await new Promise<void>(resolve => { finish = resolve }) }, quiet)
    r.start()
    await vi.advanceTimersByTimeAsync(900)
    // due in 100 ms: not put off to 500
    intervalMs = 500
    r.hurry()
    await vi.advanceTimersByTimeAsync(150)
    expect(rounds).toBe(1)
    // during the round: no timer to bring forward, and none added
    r.hurry()
    finish()
    await vi.advanceTimersByTimeAsync(500)
    expect(rounds).toBe(2)
    finish()
    await vi.advanceTimersByTimeAsync(500)
    expect(rounds).toBe(3)
    finish()
    await r.stop()
    r.hurry()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(rounds).toBe(3)
  })

  it('hurry after a stop while a round was pending runs nothing', async () => {
    let intervalMs = 1_000
    let rounds = 0
    const r = new Repeater('test', () => intervalMs, async () => { rounds++ }, quiet)
    r.start()
    await vi.advanceTimersByTimeAsync(500)
    await r.stop()
    intervalMs = 10
    r.hurry()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(rounds).toBe(0)
  })
})
