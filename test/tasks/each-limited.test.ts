import { describe, expect, it } from 'vitest'
import { eachLimited } from '../../node/tasks/each-limited.js'

describe('eachLimited', () => {
  it('runs every item, at most `limit` at a time, and as many as that while items wait', async () => {
    let running = 0
    let most = 0
    const done: number[] = []
    const gates: Array<() => void> = []
    const run = eachLimited(Array.from({ length: 10 }, (_, i) => i), 3, async i => {
      running++
      most = Math.max(most, running)
      await new Promise<void>(resolve => gates.push(resolve))
      running--
      done.push(i)
    })
    // three started before any ended: a silent peer holds up one of them, not the round
    await new Promise(resolve => setImmediate(resolve))
    expect(running).toBe(3)
    while (done.length < 10) {
      gates.shift()?.()
      await new Promise(resolve => setImmediate(resolve))
    }
    await run
    expect(most).toBe(3)
    expect(done.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  it('rejects with a failure, and takes no new item after it', async () => {
    const started: number[] = []
    const err = await eachLimited([1, 2, 3, 4], 1, async i => {
      started.push(i)
      if (i === 2) throw new Error('boom')
    }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect(started).toEqual([1, 2])
  })
})
