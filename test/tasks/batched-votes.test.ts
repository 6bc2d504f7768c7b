import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { statementBytes } from '../../protocols/task/certificate.js'
import { verifySignature } from '../../protocols/task/vote-batch.js'
import { createTestnet } from '../../sim/testnet.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Testnet } from '../../sim/testnet.js'

const TASKS = { ...FAST_TASKS, leaseMs: 5_000, voteSignBatchMax: 16, agents: [echoAgent] }

describe('votes signed in batches on a mesh', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  it('certifies every task of a burst, and every vote in every member copy checks by its own signature', async () => {
    net = await createTestnet(3, { baseDir: await tmp(), tasks: TASKS })
    await net.ready()
    const nodes = net.nodes
    // submitted at once on every node: members cast many votes in one turn, which is what is batched
    const ids = await Promise.all(Array.from({ length: 90 }, async (_, i) => (await nodes[i % 3]!.tasks!.service.submit({ capability: 'echo', input: { i } })).id))
    for (const id of ids) expect((await nodes[0]!.tasks!.service.waitFor(id, 60_000)).record.final?.state).toBe('completed')
    let batched = 0
    let checked = 0
    for (const node of nodes) {
      for (const id of ids) {
        const { record } = await node.tasks!.replica.get(id)
        if (record === undefined || !record.placement.members.includes(node.peerId.toString())) continue
        const cert = record.final?.cert
        expect(cert, `a certificate for ${id} on ${node.peerId.toString()}`).toBeDefined()
        for (const vote of cert!.votes) {
          // the signature itself, not this process's memory of votes it made or checked
          const statement = statementBytes({ id, generation: cert!.generation, epoch: cert!.epoch, term: vote.term, value: cert!.value })
          expect(verifySignature(vote.peer, statement, vote.sig)).toBe(true)
          expect(verifySignature(vote.peer, statementBytes({ id, generation: cert!.generation, epoch: cert!.epoch, term: vote.term + 1, value: cert!.value }), vote.sig)).toBe(false)
          if (vote.sig.startsWith('b1.')) batched++
          checked++
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(90 * 2 * 2)
    expect(batched).toBeGreaterThan(0)
  })
})
