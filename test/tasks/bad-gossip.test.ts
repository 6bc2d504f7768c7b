import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { presenceTopic, resultsTopic, seal, tasksTopic } from '../../protocols/gossip/index.js'
import { makeTask } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { createRawPeer } from '../../sim/raw-peer.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { Agent } from '../../node/runtime/agent.js'
import type { Testnet } from '../../sim/testnet.js'

describe('hostile gossip', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  let raw: Awaited<ReturnType<typeof createRawPeer>> | undefined
  afterEach(async () => { await raw?.stop(); await net?.stop(); raw = undefined; net = undefined })

  it('rejects and counts malformed, oversized and badly signed messages; valid tasks still complete', async () => {
    net = await createTestnet(3, { transport: 'tcp', baseDir: await tmp(), tasks: { ...FAST_TASKS, maxInputBytes: 4096 } })
    await net.ready()
    raw = await createRawPeer()
    const target = net.nodes[0]!
    const topic = tasksTopic('default', 'echo')
    raw.services.pubsub.subscribe(topic)
    raw.services.pubsub.subscribe(resultsTopic('default'))
    await raw.dial(multiaddr(target.addrs()[0] as string))
    await waitFor(() => target.libp2p.services.pubsub.getSubscribers(topic).some(p => p.equals(raw!.peerId)), { what: 'the raw peer to subscribe' })
    await waitFor(() => raw!.services.pubsub.getSubscribers(topic).some(p => p.equals(target.peerId)), { what: 'the node to be seen subscribed' })

    const key = await generateKeyPair('Ed25519')
    const from = peerIdFromPrivateKey(key).toString()
    const task = makeTask({ capability: 'echo', input: 'x', submitter: from, maxAttempts: 1, timeoutMs: 1000, deadline: Date.now() + 60_000 })
    const good = await seal(key, topic, { kind: 'task', from, at: Date.now(), placement: { epoch: 0, members: [from] }, task })
    const badSig = new Uint8Array(good)
    badSig[badSig.length - 1] = (badSig[badSig.length - 1] as number) ^ 0xff
    const impostorKey = await generateKeyPair('Ed25519')
    const impostor = await seal(impostorKey, topic, { kind: 'task', from, at: Date.now(), placement: { epoch: 0, members: [from] }, task: { ...task, input: 'y' } })
    const wrongTopic = await seal(key, topic, { kind: 'task', from, at: Date.now(), placement: { epoch: 0, members: [from] }, task: makeTask({ capability: 'sleep', input: { ms: 1 }, submitter: from, maxAttempts: 1, timeoutMs: 1000, deadline: Date.now() + 60_000 }) })
    const forgedId = await seal(key, topic, { kind: 'task', from, at: Date.now(), placement: { epoch: 0, members: [from] }, task: { ...task, input: 'not what was hashed' } })
    const badSchema = await seal(key, topic, { kind: 'task', from, at: Date.now(), placement: { epoch: 0, members: [from] }, task: { id: 'nope' } })
    const replayed = await seal(key, presenceTopic('default'), { kind: 'task', from, at: Date.now(), placement: { epoch: 0, members: [from] }, task })
    const messages: Array<[string, Uint8Array]> = [
      ['malformed', new TextEncoder().encode('definitely not an envelope')],
      ['malformed', new Uint8Array(100).fill(1)],
      ['oversized', new Uint8Array(30_000).fill(7)],
      ['bad-signature', badSig],
      ['bad-signature', impostor],
      ['bad-signature', replayed],
      ['wrong-topic', wrongTopic],
      ['bad-task-id', forgedId],
      ['invalid-schema', badSchema]
    ]
    for (const [, data] of messages) await raw.services.pubsub.publish(topic, data)
    const expected: Record<string, number> = {}
    for (const [reason] of messages) expected[reason] = (expected[reason] ?? 0) + 1
    await waitFor(() => Object.entries(expected).every(([reason, n]) => (target.tasks!.gossip.rejected as Record<string, number>)[reason] === n), {
      what: () => `rejections counted by reason ${JSON.stringify(expected)}; got ${JSON.stringify(target.tasks!.gossip.rejected)}`
    })
    // nothing bad was delivered or forwarded: no node saw an announcement, none stored those tasks
    expect(net.nodes.every(n => n.tasks!.claimer.stats.announcementsSeen === 0)).toBe(true)

    // every node healthy, and a valid task from a mesh node completes
    const { id } = await net.nodes[1]!.tasks!.service.submit({ capability: 'echo', input: 'still fine' })
    const view = await net.nodes[1]!.tasks!.service.waitFor(id, 10_000)
    expect(view.result?.value).toBe('still fine')
    expect(net.nodes.every(n => n.libp2p.status === 'started')).toBe(true)
  })

  it('refuses a presence whose input schema nests too deep, and keeps a peer\'s shallow one', async () => {
    net = await createTestnet(1, { transport: 'tcp', baseDir: await tmp(), tasks: FAST_TASKS })
    await net.ready()
    raw = await createRawPeer()
    const target = net.nodes[0]!
    const topic = presenceTopic('default')
    raw.services.pubsub.subscribe(topic)
    await raw.dial(multiaddr(target.addrs()[0] as string))
    await waitFor(() => raw!.services.pubsub.getSubscribers(topic).some(p => p.equals(target.peerId)), { what: 'the node to be seen subscribed' })
    const key = await generateKeyPair('Ed25519')
    const from = peerIdFromPrivateKey(key).toString()
    const presence = (name: string, inputSchema: Record<string, unknown>) => ({ kind: 'presence', from, at: Date.now(), version: 'x', intervalMs: 5000, capabilities: [{ name, inputSchema }], freeSlots: { [name]: 1 }, addrs: [] })
    // 20,000 levels (JSON text: JSON.stringify cannot write it) overflowed every node's GET /v1/capabilities
    const depth = 20_000
    const deep = JSON.stringify(presence('deep', { a: 0 })).replace('{"a":0}', '{"a":'.repeat(depth) + '0' + '}'.repeat(depth))
    const before = (target.tasks!.gossip.rejected as Record<string, number>)['invalid-schema'] ?? 0
    await raw.services.pubsub.publish(topic, await seal(key, topic, deep))
    await waitFor(() => ((target.tasks!.gossip.rejected as Record<string, number>)['invalid-schema'] ?? 0) === before + 1, { what: 'the deep presence to be refused' })
    await raw.services.pubsub.publish(topic, await seal(key, topic, presence('shallow', { type: 'object', properties: { text: { type: 'string' } } })))
    await waitFor(() => target.tasks!.presence.live().some(p => p.peerId === from && p.capabilities.some(c => c.name === 'shallow')), { what: 'the shallow presence to be kept' })
    expect(target.tasks!.presence.live().some(p => p.capabilities.some(c => c.name === 'deep'))).toBe(false)
  })

  it('goes on with a run when a cancel notice carries no certificate of its placement, counted', async () => {
    let open!: () => void
    const opened = new Promise<void>(resolve => { open = resolve })
    // ends at once when aborted, as a well-behaved agent does
    const patient: Agent = {
      name: 'patient',
      capabilities: ['patient'],
      run: async ctx => new Promise((resolve, reject) => {
        void opened.then(() => resolve('ran to the end'))
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error))
      })
    }
    net = await createTestnet(3, { transport: 'tcp', baseDir: await tmp(), perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 2_000, agents: i === 0 ? [patient] : [] } }) })
    await net.ready()
    const runner = net.nodes[0]!
    raw = await createRawPeer()
    const topic = resultsTopic('default')
    raw.services.pubsub.subscribe(topic)
    await raw.dial(multiaddr(runner.addrs()[0] as string))
    await waitFor(() => raw!.services.pubsub.getSubscribers(topic).some(p => p.equals(runner.peerId)), { what: 'the runner to be seen subscribed' })
    const { id } = await runner.tasks!.service.submit({ capability: 'patient', input: 'x' })
    await waitFor(() => runner.tasks!.executor.running().includes(id), { what: 'the run to start' })
    const key = await generateKeyPair('Ed25519')
    const from = peerIdFromPrivateKey(key).toString()
    await raw.services.pubsub.publish(topic, await seal(key, topic, { kind: 'notice', from, at: Date.now(), id, capability: 'patient', event: 'canceled', generation: 0 }))
    await waitFor(() => runner.tasks!.executor.stats.forgedCancels === 1, { what: 'the forged cancel to be counted' })
    expect(runner.tasks!.executor.running()).toContain(id)
    open()
    const view = await runner.tasks!.service.waitFor(id, 20_000)
    expect(view.record.final?.state).toBe('completed')
    expect(view.record.attempts.filter(a => a.outcome !== 'released')).toHaveLength(1)
  })
})
