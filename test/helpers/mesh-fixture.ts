import { afterEach } from 'vitest'
import { ApiServer } from '../../node/api/server.js'
import { createTestnet } from '../../sim/testnet.js'
import { FakeOpenAI } from './fake-openai.js'
import { useTmpDirs } from './tmp.js'
import type { Reply } from './fake-openai.js'
import type { AgentNode } from '../../node/create-node.js'
import type { Testnet, TestnetInit } from '../../sim/testnet.js'

/** A ready testnet, an API server on one of its nodes and a local OpenAI-compatible server, each stopped after the test. */
export function useMeshFixture (): {
  mesh: (n: number, init?: Omit<TestnetInit, 'baseDir'>) => Promise<Testnet>
  api: (node: AgentNode) => Promise<string>
  fakeOpenAI: (script: (body: any, n: number) => Reply) => Promise<FakeOpenAI>
} {
  const tmp = useTmpDirs()
  const held: { net?: Testnet, api?: ApiServer, fake?: FakeOpenAI } = {}
  afterEach(async () => {
    await held.api?.close()
    await held.net?.stop()
    await held.fake?.stop()
    held.net = held.api = held.fake = undefined
  })
  return {
    mesh: async (n, init = {}) => {
      held.net = await createTestnet(n, { ...init, baseDir: await tmp() })
      await held.net.ready()
      return held.net
    },
    /** the API's base URL */
    api: async node => {
      held.api = await ApiServer.listen(node, { port: 0 })
      return `http://127.0.0.1:${(held.api.server.address() as { port: number }).port}`
    },
    fakeOpenAI: async script => {
      held.fake = new FakeOpenAI(script)
      await held.fake.start()
      return held.fake
    }
  }
}
