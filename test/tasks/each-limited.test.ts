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

  it('after a failure starts no item, lets the running ones finish, then rejects with it', async () => {
    const started: number[] = []
    const finished: number[] = []
    let release!: () => void
    const slow = new Promise<void>(resolve => { release = resolve })
    const run = eachLimited([1, 2, 3, 4, 5, 6], 2, async i => {
      started.push(i)
      if (i === 1) {
        await slow
        finished.push(i)
        return
      }
      if (i === 2) throw new Error('boom')
      finished.push(i)
    })
    let settled = false
    void run.catch(() => {}).finally(() => { settled = true })
    for (let k = 0; k < 5; k++) await new Promise(resolve => setImmediate(resolve))
    // item 1 still runs: the round has not ended under it
    expect(settled).toBe(false)
    release()
    const err = await run.catch((e: Error) => e)
    expect((err as Error).message).toBe('boom')
    expect(started).toEqual([1, 2])
    expect(finished).toEqual([1])
  })
})
