import { describe, expect, it } from 'vitest'
import { MAX_UNHASHED, RecordHashes, recordHash } from '../../protocols/replica/digest.js'
import { ReplicaIndex } from '../../protocols/replica/replica-index.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'

describe('replica index', () => {
  it('keeps one members list for the records of one placement, as read from disk each with its own copy', () => {
    const peers = ['12D3KooWA', '12D3KooWB', '12D3KooWC', '12D3KooWD']
    const idx = new ReplicaIndex(peers[0]!, 10, 1 << 20)
    const now = Date.now()
    const record = (i: number, members: string[]): ReturnType<typeof newRecord> =>
      JSON.parse(JSON.stringify(newRecord(makeTask({ capability: 'echo', input: i, submitter: peers[0]!, maxAttempts: 3, timeoutMs: 1_000, deadline: now + 60_000, now }), { epoch: 0, members }, now)))
    const [a, b, c] = [record(1, peers.slice(0, 3)), record(2, peers.slice(0, 3)), record(3, [peers[0]!, peers[1]!, peers[3]!])]
    for (const r of [a, b, c]) idx.index(r)
    expect(idx.members.get(a.task.id)).toEqual(peers.slice(0, 3))
    expect(idx.members.get(b.task.id)).toBe(idx.members.get(a.task.id))
    expect(idx.members.get(c.task.id)).toEqual([peers[0], peers[1], peers[3]])
    expect(idx.members.get(c.task.id)).not.toBe(idx.members.get(a.task.id))
  })

  it('holds a copy kept outside its placement without a hash, and hashes it once a move makes this node a member', () => {
    const peers = ['12D3KooWA', '12D3KooWB', '12D3KooWC', '12D3KooWD']
    const idx = new ReplicaIndex(peers[0]!, 10, 1 << 20)
    const now = Date.now()
    const task = makeTask({ capability: 'echo', input: 1, submitter: peers[0]!, maxAttempts: 3, timeoutMs: 1_000, deadline: now + 60_000, now })
    const elsewhere = newRecord(task, { epoch: 0, members: peers.slice(1) }, now)
    idx.index(elsewhere)
    expect(idx.hashes.has(task.id)).toBe(true)
    expect(idx.hashes.pending).toBe(0)
    expect(idx.hashes.get(task.id)).toBeUndefined()
    const moved = { ...elsewhere, placement: { epoch: 1, members: peers.slice(0, 3) } }
    idx.index(moved, elsewhere)
    expect(idx.hashes.pending).toBe(1)
    expect(idx.hashes.get(task.id)).toBe(recordHash(moved))
  })
})

describe('record hashes', () => {
  it('hashes the oldest waiting record when too many wait, not all of them at once', () => {
    const hashes = new RecordHashes()
    const now = Date.now()
    const ids: string[] = []
    for (let i = 0; i <= MAX_UNHASHED; i++) {
      const r = newRecord(makeTask({ capability: 'echo', input: i, submitter: 'p', maxAttempts: 3, timeoutMs: 1_000, deadline: now + 60_000, now }), { epoch: 0, members: ['p'] }, now)
      ids.push(r.task.id)
      hashes.set(r)
    }
    // one over the bound: the first was hashed, the rest still wait (a version before hashed all of them in one call)
    expect(hashes.pending).toBe(MAX_UNHASHED)
    expect(hashes.get(ids[0]!)).toMatch(/^[0-9a-f]{16}$/)
    expect(hashes.pending).toBe(MAX_UNHASHED)
    expect(hashes.get(ids[1]!)).toMatch(/^[0-9a-f]{16}$/)
    expect(hashes.pending).toBe(MAX_UNHASHED - 1)
  })

  it('hashes first the record written least recently, and neither hashes nor keeps a copy kept outside its placement', () => {
    const hashes = new RecordHashes()
    const now = Date.now()
    const record = (i: number, members = ['p']): ReturnType<typeof newRecord> =>
      newRecord(makeTask({ capability: 'echo', input: i, submitter: 'p', maxAttempts: 3, timeoutMs: 1_000, deadline: now + 60_000, now }), { epoch: 0, members }, now)
    const first = record(-1)
    hashes.set(first)
    for (let i = 0; i < MAX_UNHASHED - 1; i++) hashes.set(record(i))
    expect(hashes.pending).toBe(MAX_UNHASHED)
    // written again (another generation, which the hash covers): to the back of the queue, so the
    // next one over the bound hashes another
    const rewritten = { ...first, generation: 1, updatedAt: now + 1 }
    hashes.set(rewritten)
    hashes.set(record(MAX_UNHASHED))
    expect(hashes.pending).toBe(MAX_UNHASHED)
    // a copy anti-entropy never compares: held, not waiting, no hash
    const elsewhere = record(MAX_UNHASHED + 1, ['q', 'r', 's'])
    hashes.set(elsewhere, false)
    expect(hashes.has(elsewhere.task.id)).toBe(true)
    expect(hashes.pending).toBe(MAX_UNHASHED)
    expect(hashes.get(elsewhere.task.id)).toBeUndefined()
    // the first record still waits: asked for, it is hashed now, as last written
    expect(hashes.get(first.task.id)).toBe(recordHash(rewritten))
    expect(recordHash(rewritten)).not.toBe(recordHash(first))
    expect(hashes.pending).toBe(MAX_UNHASHED - 1)
    // a compared record that leaves this node's placements stops waiting too
    const moved = record(MAX_UNHASHED + 2)
    hashes.set(moved)
    expect(hashes.pending).toBe(MAX_UNHASHED)
    hashes.set(moved, false)
    expect(hashes.pending).toBe(MAX_UNHASHED - 1)
    expect(hashes.get(moved.task.id)).toBeUndefined()
  })
})
