import { describe, expect, it } from 'vitest'
import { KeyCreations } from '../../node/tasks/key-creations.js'

describe('creations of idempotency keys under way', () => {
  it('gives a key to one creator; the others get its answer, and a failed creation passes the key to one waiter only', async () => {
    const keys = new KeyCreations()
    const first = await keys.claim('k')
    expect('owned' in first).toBe(true)
    // two waiters while the first creates
    const waiters = [keys.claim('k'), keys.claim('k')]
    if (!('owned' in first)) throw new Error('unreachable')
    first.owned.fail(new Error('refused'))
    // exactly one takes the key over (at once); the other waits for it and gets its answer
    const owner = await Promise.race(waiters)
    if (!('owned' in owner)) throw new Error('the first waiter to return should own the key')
    const third = keys.claim('k')
    owner.owned.settle({ id: 'k', created: true })
    const both = await Promise.all(waiters)
    expect(both.filter(c => 'owned' in c)).toHaveLength(1)
    expect(both.filter(c => 'answer' in c)).toEqual([{ answer: { id: 'k', created: true } }])
    expect(await third).toEqual({ answer: { id: 'k', created: true } })
    // settled: nothing is kept, the next claim owns the key again
    expect(keys.earlier('k')).toBeUndefined()
    expect('owned' in await keys.claim('k')).toBe(true)
  })
})
