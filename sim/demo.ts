/* `npm start`: a 5-node local mesh that finds itself. Grows into the simulator's demo. */
import { line } from '../node/cli/output.js'
import { createTestnet } from './testnet.js'

async function demo (): Promise<void> {
  const started = Date.now()
  line('agentmesh demo: starting a 5-node mesh on 127.0.0.1 (each node bootstraps from the one before)')
  const net = await createTestnet(5, { transport: 'tcp', topology: 'chain' })
  try {
    for (const [i, node] of net.nodes.entries()) line(`  node ${i}: ${node.peerId.toString()} at ${node.addrs()[0] ?? '?'}`)
    await net.waitForFullMesh(30_000)
    line(`every node sees the other 4 after ${Date.now() - started} ms:`)
    for (const [i, node] of net.nodes.entries()) {
      const peers = node.libp2p.getPeers().map(p => net.nodes.findIndex(n => n.peerId.equals(p)))
      line(`  node ${i} is connected to nodes ${peers.sort().join(', ')}`)
    }
  } finally {
    await net.stop()
  }
  line('stopped cleanly')
}

demo().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`)
  process.exitCode = 1
})
