import { multiaddr } from '@multiformats/multiaddr'
import { tasksTopic } from '../protocols/gossip/index.js'
import { createRawPeer } from './raw-peer.js'
import { waitFor } from './wait.js'
import type { Rng } from './rng.js'

/**
 * A misbehaving peer: joins through `addr` and publishes `messages` pieces of garbage (random
 * bytes, and envelopes with broken signatures) onto a task topic. Returns how many it sent.
 */
export async function flood (addr: string, mesh: string, capability: string, messages: number, rng: Rng): Promise<number> {
  const raw = await createRawPeer()
  const topic = tasksTopic(mesh, capability)
  try {
    raw.services.pubsub.subscribe(topic)
    await raw.dial(multiaddr(addr))
    await waitFor(() => raw.services.pubsub.getSubscribers(topic).length > 0, { what: 'a subscriber to flood', timeoutMs: 10_000 })
    let sent = 0
    for (let i = 0; i < messages; i++) {
      const size = rng.int(1, 2048)
      const junk = new Uint8Array(size).map(() => rng.int(0, 256))
      // half look like envelopes (version byte 1) so they reach the signature check
      if (i % 2 === 0) junk[0] = 1
      await raw.services.pubsub.publish(topic, junk).catch(() => {})
      sent++
      // a burst without pause only fills buffers; gossipsub gives no backpressure
      if (i % 100 === 99) await new Promise(resolve => setTimeout(resolve, 10))
    }
    return sent
  } finally {
    await raw.stop()
  }
}
