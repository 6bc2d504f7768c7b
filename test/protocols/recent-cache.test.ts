import { describe, expect, it } from 'vitest'
import { RecentCache } from '../../protocols/replica/index.js'

describe('RecentCache', () => {
  it('keeps at most its count, and a read entry outlives older unread ones', () => {
    const c = new RecentCache<number>(3)
    c.set('a', 1)
    c.set('b', 2)
    c.set('c', 3)
    expect(c.get('a')).toBe(1)
    c.set('d', 4)
    // b was the oldest unread: a was read, so it got a second chance
    expect(c.size).toBe(3)
    expect(c.get('b')).toBeUndefined()
    expect([c.get('a'), c.get('c'), c.get('d')]).toEqual([1, 3, 4])
    // every entry read: after a round the first in line goes (c: a went behind it at its second
    // chance), and never the one just set
    c.set('e', 5)
    expect(c.size).toBe(3)
    expect([c.get('a'), c.get('c'), c.get('d'), c.get('e')]).toEqual([1, undefined, 4, 5])
  })

  it('keeps within its byte budget, refuses an entry larger than the whole budget, and counts deletes', () => {
    const c = new RecentCache<string>(100, 10)
    c.set('a', 'x', 4)
    c.set('b', 'y', 4)
    c.get('a')
    c.set('c', 'z', 4)
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual(['x', undefined, 'z'])
    c.set('huge', 'h', 11)
    expect(c.get('huge')).toBeUndefined()
    expect(c.size).toBe(2)
    c.delete('a')
    c.set('d', 'w', 6)
    expect([c.get('c'), c.get('d')]).toEqual(['z', 'w'])
    // a key set again replaces its bytes, it does not add to them
    c.set('d', 'v', 6)
    expect([c.get('c'), c.get('d'), c.size]).toEqual(['z', 'v', 2])
  })
})
