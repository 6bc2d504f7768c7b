import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Repeater } from '../../node/tasks/repeater.js'
import { quiet } from '../helpers/quiet-log.js'

/** A repeater whose interval the test sets, counting its rounds; `hold` keeps each round open until `finish()`. */
function counted (intervalMs: number, hold = false): { r: Repeater, rounds: () => number, every: (ms: number) => void, finish: () => void } {
  let rounds = 0
  let finish = (): void => {}
  const r = new Repeater('test', () => intervalMs, async () => {
    rounds++
    if (hold) await new Promise<void>(resolve => { finish = resolve })
  }, quiet)
  return { r, rounds: () => rounds, every: ms => { intervalMs = ms }, finish: () => { finish() } }
}

describe('Repeater', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('hurry brings a far-off round forward to the interval it reads now', async () => {
    const { r, rounds, every } = counted(10_000)
    r.start()
    await vi.advanceTimersByTimeAsync(1_000)
    every(100)
    r.hurry()
    await vi.advanceTimersByTimeAsync(150)
    expect(rounds()).toBe(1)
    await r.stop()
  })

  it('hurry leaves a round that is due sooner alone, does nothing during a round or after stop, and never makes a second chain', async () => {
    const { r, rounds, every, finish } = counted(1_000, true)
    r.start()
    await vi.advanceTimersByTimeAsync(900)
    // due in 100 ms: not put off to 500
    every(500)
    r.hurry()
    await vi.advanceTimersByTimeAsync(150)
    expect(rounds()).toBe(1)
    // during the round: no timer to bring forward, and none added
    r.hurry()
    finish()
    await vi.advanceTimersByTimeAsync(500)
    expect(rounds()).toBe(2)
    finish()
    await vi.advanceTimersByTimeAsync(500)
    expect(rounds()).toBe(3)
    finish()
    await r.stop()
    r.hurry()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(rounds()).toBe(3)
  })

  it('hurry after a stop while a round was pending runs nothing', async () => {
    const { r, rounds, every } = counted(1_000)
    r.start()
    await vi.advanceTimersByTimeAsync(500)
    await r.stop()
    every(10)
    r.hurry()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(rounds()).toBe(0)
  })
})
