import { afterEach, describe, expect, it } from 'vitest'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { interceptLease } from '../helpers/intercept-lease.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { LeaseRequest } from '../../protocols/lease/index.js'
import type { Testnet } from '../../sim/testnet.js'

describe('a cancel that meets a result on its way', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('answers the outcome the placement certifies, not a conflict, when the members split and the result wins', async () => {
    let open!: () => void
    const opened = new Promise<void>(resolve => { open = resolve })
    const gated: Agent = { name: 'gated', capabilities: ['gated'], concurrency: 1, run: async () => { await opened; return { ran: 'here' } } }
    // a lease of 10 s: nothing lapses, so no sweep decides the task while the test holds the votes
    net = await createTestnet(3, { baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 10_000, agents: i === 0 ? [gated] : [] } }) })
    await net.ready()
    const [holder, canceler, silent] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    const { id } = await holder.tasks!.service.submit({ capability: 'gated', input: {} })
    await waitFor(async () => (await holder.tasks!.service.get(id)).record.attempts.length === 1, { what: 'the holder to run the task', timeoutMs: 10_000 })

    // the holder's votes wait at both other members until the cancel has been answered; the third
    // member's answer to the cancel is lost, so the cancel sees one vote each way and no majority
    let release!: () => void
    const released = new Promise<void>(resolve => { release = resolve })
    let votesHeld = 0
    const holdVotes = async (req: LeaseRequest): Promise<undefined> => {
      if (req.op === 'vote') { votesHeld++; await released }
      return undefined
    }
    interceptLease(canceler, holdVotes)
    interceptLease(silent, async req => {
      if (req.op === 'cancel') { setTimeout(release, 100); return { status: 'ERROR', reason: 'lost (test)' } }
      return await holdVotes(req)
    })
    open()
    await waitFor(() => votesHeld === 2, { what: 'the holder to ask both members for their votes', timeoutMs: 10_000 })

    const view = await canceler.tasks!.service.cancel(id)
    expect(view.record.final?.state).toBe('completed')
    expect(view.result?.value).toEqual({ ran: 'here' })
    for (const n of net.nodes) await waitFor(async () => (await n.tasks!.replica.get(id)).record?.final?.state === 'completed', { what: 'every member to hold the certificate', timeoutMs: 10_000 })
  })
})
