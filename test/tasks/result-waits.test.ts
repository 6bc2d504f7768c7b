import { request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'

/** A task no node offers: it stays pending, so a wait on its result runs until its deadline. */
const PENDING = { capability: 'nobody.offers.this', input: 1 }

describe('waits on a result end when nobody is left to answer', () => {
  const f = useMeshFixture()

  it('a long poll whose client goes away stops waiting, and the node answers the next request', async () => {
    const net = await f.mesh(2, { tasks: { ...FAST_TASKS, agents: [echoAgent] } })
    const s = net.nodes[0]!.tasks!.service
    const base = await f.api(net.nodes[0]!)
    const { id } = await s.submit(PENDING)
    const before = s.stats.waitPolls
    // a minute's wait, dropped by its client once the node has polled for it at least once
    const req = request(`${base}/v1/tasks/${id}/result?wait=60000`)
    req.on('error', () => {})
    req.end()
    await waitFor(() => s.stats.waitPolls > before, { what: 'the long poll to poll', timeoutMs: 10_000 })
    req.destroy()
    // it used to poll the placement for its whole minute, for a client long gone
    await waitFor(() => s.stats.waitsAbandoned === 1, { what: 'the wait to end with its client', timeoutMs: 5_000 })
    const res = await fetch(`${base}/v1/tasks/${id}/result`)
    expect(res.status).toBe(202)
  })

  it('a wait under way ends when its node stops, with the task as it stands', async () => {
    const net = await f.mesh(2, { tasks: { ...FAST_TASKS, agents: [echoAgent] } })
    const s = net.nodes[0]!.tasks!.service
    const { id } = await s.submit(PENDING)
    const before = s.stats.waitPolls
    const started = Date.now()
    const wait = s.waitFor(id, 60_000)
    await waitFor(() => s.stats.waitPolls > before, { what: 'the wait to poll', timeoutMs: 10_000 })
    s.stop()
    const view = await wait
    expect(view.record?.final).toBeUndefined()
    expect(s.stats.waitsAbandoned).toBe(1)
    expect(Date.now() - started).toBeLessThan(30_000)
  })
})
