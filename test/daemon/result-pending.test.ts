import { describe, expect, it } from 'vitest'
import { ApiServer } from '../../node/api/server.js'
import { finalOf, makeTask, newRecord, resultHash } from '../../protocols/task/index.js'
import type { FinalValue, TaskRecord } from '../../protocols/task/index.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'
import { certBy, makePeer } from '../helpers/peers.js'

describe('the result route, for a task completed elsewhere whose result has not reached this node', () => {
  const f = useMeshFixture()

  it('answers 202 with the state, not a 200 without the result (a submit\'s ?wait= answers through the same code)', async () => {
    const net = await f.mesh(1, { tasks: { ...FAST_TASKS, agents: [] } })
    const node = net.nodes[0]!
    // a placement of peers this node cannot reach: its copy is certified completed, the result stays with them
    const members = await Promise.all([0, 1, 2].map(makePeer))
    const task = makeTask({ capability: 'echo', input: 'elsewhere', submitter: members[0]!.id, maxAttempts: 1, timeoutMs: 60_000, deadline: Date.now() + 3_600_000 })
    const value: FinalValue = { state: 'completed', claimId: 'c1', resultHash: resultHash('far away') }
    const record: TaskRecord = { ...newRecord(task, { epoch: 0, members: members.map(m => m.id) }), final: finalOf(certBy(task.id, value, members.slice(0, 2)), Date.now()) }
    expect(await node.tasks!.replica.put(record)).toBeDefined()
    const api = await ApiServer.listen(node, { port: 0 })
    try {
      const base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`
      for (const wait of ['', '?wait=5']) {
        const res = await fetch(`${base}/v1/tasks/${task.id}/result${wait}`)
        expect(res.status).toBe(202)
        expect(await res.json()).toEqual({ id: task.id, state: 'completed' })
      }
    } finally {
      await api.close()
    }
  })
})
