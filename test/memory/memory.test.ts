import { describe, expect, it } from 'vitest'
import { MEMORY_AGENTS, memoryEmbedAgent, memoryPutAgent } from '../../node/agents/memory.js'
import { inputProblem } from '../../protocols/tools/tool-schema.js'
import { openaiEmbedder } from '../../node/memory/embedder.js'
import { waitFor } from '../../sim/wait.js'
import { call } from '../helpers/api.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useMeshFixture } from '../helpers/mesh-fixture.js'

/** A unit vector pointing mostly along axis i (of 16), so each record's nearest is itself. */
function axis (i: number, dims = 16): number[] {
  return Array.from({ length: dims }, (_, j) => j === i % dims ? 1 : 0.01 * ((i + j) % 7))
}

describe('vector memory on the mesh', () => {
  const f = useMeshFixture()

  it('writes each record to a majority of its placement, finds it from any node, and survives the loss of a member', async () => {
    const net = await f.mesh(4, { tasks: { ...FAST_TASKS, presenceIntervalMs: 1_000, agents: [] } })
    const nodes = net.nodes.map(n => n.tasks!)
    const base = await f.api(net.nodes[0]!)
    const records = Array.from({ length: 16 }, (_, i) => ({ id: `r${i}`, vector: axis(i), text: `record ${i}`, metadata: { parity: i % 2 === 0 ? 'even' : 'odd' } }))
    const put = await call(base, 'POST', '/v1/memory/notes', { records })
    expect(put.status).toBe(201)
    expect(put.json.records).toHaveLength(16)
    for (const r of put.json.records) expect(r.replicas).toBeGreaterThanOrEqual(2)

    // a text where no embeddings model is configured: 503, and no Retry-After, since waiting does not fix it
    const noModel = await fetch(`${base}/v1/memory/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 't', text: 'words' }) })
    expect(noModel.status).toBe(503)
    expect(((await noModel.json()) as any).error).toMatchObject({ name: 'EMBEDDINGS_UNAVAILABLE', message: expect.stringMatching(/no embeddings model/) })
    expect(noModel.headers.get('retry-after')).toBeNull()

    // on disk: every record on at least a majority of the placement its writer chose
    for (const r of records) {
      const members = nodes[0]!.memory.placement('notes', r.id)
      let held = 0
      for (const n of net.nodes) if (members.includes(n.peerId.toString()) && await n.store.memory.get(`notes/${r.id}`) !== undefined) held++
      expect(held, r.id).toBeGreaterThanOrEqual(2)
    }

    // every record is its own nearest, asked of any node
    for (const [i, r] of records.entries()) {
      const answer = await nodes[i % 4]!.memory.search('notes', { vector: r.vector, k: 3 })
      expect(answer.hits[0]?.id).toBe(r.id)
      expect(answer.coverage.complete).toBe(true)
    }
    const filtered = await call(base, 'POST', '/v1/memory/notes/search', { vector: axis(3), k: 5, filter: { parity: 'even' } })
    expect(filtered.status).toBe(200)
    expect(filtered.json.hits.length).toBe(5)
    expect(filtered.json.hits.every((h: any) => h.metadata.parity === 'even')).toBe(true)

    // a member gone: fewer than R members silent, so every placement still answers
    const gone = net.nodes[3]!.peerId.toString()
    await net.nodes[3]!.stop()
    const left = nodes.slice(0, 3)
    await waitFor(async () => left.every(n => !n.presence.liveIds().includes(gone)), { what: 'the others to see the stopped node leave', timeoutMs: 15_000 })
    for (const r of records) {
      const answer = await left[0]!.memory.search('notes', { vector: r.vector, k: 1 })
      expect(answer.hits[0]?.id).toBe(r.id)
      expect(answer.coverage).toMatchObject({ complete: true, silent: [gone] })
    }

    const del = await call(base, 'DELETE', '/v1/memory/notes/r5')
    expect({ status: del.status, deleted: del.json.deleted }).toEqual({ status: 200, deleted: true })
    // a second delete, and one of an id never stored, write their tombstone and say nothing was there
    for (const id of ['r5', 'never-stored']) {
      const none = await call(base, 'DELETE', `/v1/memory/notes/${id}`)
      expect({ status: none.status, deleted: none.json.deleted }).toEqual({ status: 200, deleted: false })
    }
    const after = await left[1]!.memory.search('notes', { vector: axis(5), k: 16 })
    expect(after.hits.map(h => h.id)).not.toContain('r5')
    expect(after.hits).toHaveLength(15)

    // ids as long as a record may have are deleted through the path too, however they encode
    // (the router once answered 414 past 100 characters of the path part)
    const longIds = ['x'.repeat(256), '€'.repeat(256), '😀'.repeat(128)]
    const longPut = await call(base, 'POST', '/v1/memory/notes', { records: longIds.map((id, i) => ({ id, vector: axis(i + 16) })) })
    expect(longPut.status).toBe(201)
    const held = async (): Promise<string[]> => (await left[1]!.memory.search('notes', { vector: axis(0), k: 32 })).hits.map(h => h.id).filter(id => longIds.includes(id))
    expect((await held()).sort()).toEqual([...longIds].sort())
    for (const id of longIds) {
      const deleted = await call(base, 'DELETE', `/v1/memory/notes/${encodeURIComponent(id)}`)
      expect(deleted.status, id.slice(0, 4)).toBe(200)
      expect(deleted.json).toMatchObject({ id, deleted: true })
    }
    expect(await held()).toEqual([])
    expect((await call(base, 'DELETE', `/v1/memory/notes/${'y'.repeat(257)}`)).status).toBe(400)
    // a path part longer than any id: 414 with a short answer of its own, not the router's echo of it
    for (const path of [`/v1/memory/notes/${'y'.repeat(3_000)}`, `/v1/tasks/${'a'.repeat(3_000)}`]) {
      const tooLong = await call(base, path.startsWith('/v1/tasks') ? 'GET' : 'DELETE', path)
      expect({ status: tooLong.status, name: tooLong.json.error?.name }).toEqual({ status: 414, name: 'URI_TOO_LONG' })
      expect(tooLong.json.error.message.length).toBeLessThan(200)
    }

    // refused before anything is written: what no URL could delete, what float32 cannot hold or
    // cosine cannot compare, and a text past its limit in UTF-8 bytes
    const refused: Array<[string, unknown, RegExp]> = [
      ['/v1/memory/notes', { id: '\ud800', vector: axis(1) }, /well-formed Unicode/],
      ['/v1/memory/notes', { id: 'huge', vector: [1e39, ...axis(1).slice(1)] }, /32-bit float/],
      ['/v1/memory/notes', { id: 'zero', vector: new Array(16).fill(0) }, /zeros/],
      ['/v1/memory/notes', { id: 'tiny', vector: new Array(16).fill(1e-46) }, /zeros/],
      ['/v1/memory/notes', { id: 'wide', vector: axis(1), text: '€'.repeat(30_000) }, /bytes \(UTF-8\)/],
      ['/v1/memory/notes/search', { vector: new Array(16).fill(0), k: 3 }, /zeros/],
      // raw JSON: an object literal's "__proto__" would set the prototype, not make a key
      ['/v1/memory/notes', `{"id":"proto","vector":${JSON.stringify(axis(1))},"metadata":{"__proto__":"x"}}`, /metadata: a key may not be "__proto__"/],
      ['/v1/memory/notes/search', `{"vector":${JSON.stringify(axis(1))},"filter":{"__proto__":"x"}}`, /filter: a key may not be "__proto__"/]
    ]
    for (const [path, body, why] of refused) {
      const answer = await call(base, 'POST', path, body)
      expect({ status: answer.status, name: answer.json.error?.name }, String(why)).toEqual({ status: 400, name: 'BAD_REQUEST' })
      expect(answer.json.error.message).toMatch(why)
    }
    const stored = (await left[1]!.memory.search('notes', { vector: axis(0), k: 32 })).hits.map(h => h.id)
    expect(stored.filter(id => ['\ud800', 'huge', 'zero', 'tiny', 'wide', 'proto'].includes(id))).toEqual([])
  }, 60_000)

  it('takes back a write refused by a majority from the member that stored it, and searches past a member whose copy has another size', async () => {
    const net = await f.mesh(3, { tasks: { ...FAST_TASKS, presenceIntervalMs: 1_000, agents: [] } })
    const nodes = net.nodes.map(n => n.tasks!)
    // two members hold the collection at 2 dimensions, as a refused first write once left one of them
    const seed = (id: string): any => ({ collection: 'split', id, vector: [1, 0], version: Date.now(), writer: 'seed' })
    await nodes[0]!.memory.local.put([seed('old0')])
    await nodes[1]!.memory.local.put([seed('old1')])
    // a 3-dimension write: refused by both (a majority of the three), stored by the third
    await expect(nodes[2]!.memory.put('split', [{ id: 'b', vector: [0, 0, 1] }])).rejects.toMatchObject({ name: 'InvalidMemoryError', message: expect.stringMatching(/record b refused: a vector of 3 dimensions/) })
    expect(nodes[2]!.memory.stats.retracted).toBe(1)
    // the third member does not keep what the caller was told was refused, nor its size
    expect(nodes[2]!.memory.local.search('split', [0, 0, 1], 5)).toEqual([])
    expect(nodes[2]!.memory.local.dimensionsOf('split')).toBeUndefined()
    // a member of another size answers no hits; the others' records are still found through it
    await nodes[2]!.memory.local.put([{ collection: 'split', id: 'new2', vector: [0, 0, 1], version: Date.now(), writer: 'seed' }])
    const through0 = await nodes[0]!.memory.search('split', { vector: [0, 0, 1], k: 5 })
    expect(through0.hits.map(h => h.id)).toEqual(['new2'])
    await expect(nodes[0]!.memory.search('split', { vector: [1, 0, 0, 0], k: 5 })).rejects.toMatchObject({ name: 'InvalidMemoryError', message: expect.stringMatching(/has vectors of (2 or 3|3 or 2) dimensions; the query has 4/) })
  }, 60_000)

  it('drops a record a member kept through a delete it missed, found deleted by the others, and sends that member the tombstone', async () => {
    const net = await f.mesh(3, { tasks: { ...FAST_TASKS, presenceIntervalMs: 1_000, agents: [] } })
    const nodes = net.nodes.map(n => n.tasks!)
    await waitFor(async () => nodes.every(n => n.presence.liveIds().length === 3), { what: 'every node to see the others' })
    await nodes[0]!.memory.put('gone', [{ id: 'kept', vector: axis(1) }, { id: 'deleted', vector: axis(2) }])
    // the delete reached two members: the third was down then, as a restart after it finds itself
    const at = (await net.nodes[0]!.store.memory.get('gone/deleted'))!.version + 1
    const tombstone = { collection: 'gone', id: 'deleted', version: at, writer: 'deleter', deleted: true as const }
    for (const n of nodes.slice(0, 2)) await n.memory.local.put([tombstone])
    expect(nodes[2]!.memory.local.search('gone', axis(2), 5).map(h => h.id)).toContain('deleted')
    for (const n of nodes) {
      const answer = await n.memory.search('gone', { vector: axis(2), k: 5 })
      expect(answer.hits.map(h => h.id), 'a search from each node').toEqual(['kept'])
    }
    // the first search dropped it; a later one may find the repair already made
    expect(nodes[0]!.memory.stats.staleHitsDropped).toBe(1)
    // the member that kept it is sent the tombstone, and answers it no more on its own
    await waitFor(async () => nodes[2]!.memory.local.search('gone', axis(2), 5).every(h => h.id !== 'deleted'), { what: 'the third member to take the tombstone' })
    expect(nodes[2]!.memory.local.tombstonesOf('gone', ['deleted', 'kept'])).toEqual([{ id: 'deleted', version: at, writer: 'deleter' }])
    // one record taken away, once: a second search's repair, if any, found the tombstone there
    const repaired = (): number => nodes.reduce((sum, n) => sum + n.memory.stats.tombstonesRepaired, 0)
    await waitFor(async () => repaired() > 0, { what: 'the repair counted' })
    expect(repaired()).toBe(1)
  }, 60_000)

  it('embeds texts through an OpenAI-compatible /v1/embeddings, and refuses bad requests with clear errors', async () => {
    const fake = await f.fakeOpenAI(() => ({ content: 'unused' }))
    const net = await f.mesh(3, { tasks: { ...FAST_TASKS, presenceIntervalMs: 1_000, agents: [], embed: openaiEmbedder({ model: 'embed-test', baseURL: fake.baseURL, apiKey: 'k' }) } })
    const base = await f.api(net.nodes[1]!)
    const docs = ['the cat sat on the mat', 'stock prices fell sharply today', 'a recipe for tomato soup']
    for (const [i, text] of docs.entries()) expect((await call(base, 'POST', '/v1/memory/docs', { id: `d${i}`, text, metadata: { i } })).status).toBe(201)
    expect(fake.embeddingRequests.length).toBe(3)
    expect(fake.embeddingRequests[0]).toMatchObject({ model: 'embed-test', encoding_format: 'float' })
    const found = await call(base, 'POST', '/v1/memory/docs/search', { text: 'tomato soup recipe', k: 2 })
    expect(found.status).toBe(200)
    expect(found.json.hits[0]).toMatchObject({ id: 'd2', text: docs[2], metadata: { i: 2 } })

    expect((await call(base, 'POST', '/v1/memory/docs', { id: 'x' })).status).toBe(400)
    // one id twice in a put would count one member's answer twice towards the majority
    expect((await call(base, 'POST', '/v1/memory/docs', { records: [{ id: 'd', vector: [1, 0] }, { id: 'd', vector: [0, 1] }] })).status).toBe(400)
    expect((await call(base, 'POST', '/v1/memory/bad%20name', { id: 'x', vector: [1] })).status).toBe(400)
    expect((await call(base, 'POST', '/v1/memory/docs/search', { text: 'a', vector: [1] })).status).toBe(400)
    const wrongDims = await call(base, 'POST', '/v1/memory/docs', { id: 'w', vector: [1, 2, 3] })
    expect(wrongDims.status).toBe(400)
    expect(wrongDims.json.error.message, wrongDims.json.error.message).toMatch(/3 dimensions; collection docs has 64/)
    // each says what is wrong with which field (checked against the union, each read "Invalid input"),
    // and a "__proto__" metadata key is refused (it was dropped, and the record stored without it)
    for (const [body, message] of [
      [{ id: 'h', vector: ['a', 1, 2] }, /^vector\.0: /],
      [{ id: 'h', vector: [1, 0], metadata: 'str' }, /^metadata: /],
      [{ records: Array.from({ length: 257 }, (_, i) => ({ id: `r${i}`, vector: [1, 0] })) }, /^records: /],
      [JSON.parse('{"id":"h","vector":[1,0],"metadata":{"__proto__":{"a":1}}}'), /__proto__/]
    ] as const) {
      const bad = await call(base, 'POST', '/v1/memory/docs', body)
      expect({ status: bad.status, message: bad.json?.error?.message }).toMatchObject({ status: 400, message: expect.stringMatching(message) })
    }
    const wrongQuery = await call(base, 'POST', '/v1/memory/docs/search', { vector: [1, 2] })
    expect(wrongQuery.status).toBe(400)
    expect(wrongQuery.json.error.message).toMatch(/64 dimensions; the query has 2/)
  }, 60_000)

  it('refuses what an embeddings endpoint answers that a client could not send, and stores nothing of it', async () => {
    const answers: Record<string, unknown> = { nulls: [1, null, 'x'], zeros: [0, 0, 0], huge: [1e39, 1, 1], good: [1, 0.5, 0.25] }
    const embed = async (texts: string[]): Promise<number[][]> => texts.map(t => answers[t] as number[])
    const net = await f.mesh(3, { tasks: { ...FAST_TASKS, presenceIntervalMs: 1_000, agents: [], embed } })
    const base = await f.api(net.nodes[0]!)
    for (const [text, message] of [['nulls', /no vector of 1 to 4096 finite numbers/], ['zeros', /a vector of zeros/], ['huge', /outside the range of a 32-bit float/]] as const) {
      const put = await call(base, 'POST', '/v1/memory/emb', { id: text, text })
      expect({ status: put.status, name: put.json?.error?.name, message: put.json?.error?.message }).toMatchObject({ status: 503, name: 'EMBEDDINGS_UNAVAILABLE', message: expect.stringMatching(message) })
      expect((await call(base, 'POST', '/v1/memory/emb/search', { text, k: 5 })).status).toBe(503)
    }
    for (const n of net.nodes) for (const id of ['nulls', 'zeros', 'huge']) expect(await n.store.memory.get(`emb/${id}`), id).toBeUndefined()
    // the collection's size is the first good vector's, on every member
    expect((await call(base, 'POST', '/v1/memory/emb', { id: 'good', text: 'good' })).json.records[0].replicas).toBe(3)
    expect((await call(base, 'POST', '/v1/memory/emb/search', { text: 'good', k: 5 })).json.hits.map((h: { id: string }) => h.id)).toEqual(['good'])
  }, 60_000)

  it('a node without an embeddings model has a peer with one embed its texts (memory.embed tasks), for writes and searches, through the API and as tasks', async () => {
    const embedded: string[] = []
    // a vector a text alone makes: the same text finds itself first
    const embed = async (texts: string[]): Promise<number[][]> => {
      embedded.push(...texts)
      return texts.map(t => Array.from({ length: 8 }, (_, d) => 1 + ((t.charCodeAt(t.length - 1) * (d + 3)) % 17)))
    }
    const net = await f.mesh(3, { perNode: i => ({ tasks: { ...FAST_TASKS, presenceIntervalMs: 1_000, agents: i === 0 ? [memoryEmbedAgent(embed)] : MEMORY_AGENTS } }) })
    const [modelNode, taskNode, apiNode] = [net.nodes[0]!, net.nodes[1]!, net.nodes[2]!]
    expect(modelNode.tasks!.runtime.capabilities().map(c => c.name)).toContain('memory.embed')
    expect(apiNode.tasks!.runtime.capabilities().map(c => c.name)).not.toContain('memory.embed')
    await waitFor(() => apiNode.tasks!.presence.live().some(p => p.capabilities.some(c => c.name === 'memory.embed')), { what: 'the model node to be seen offering memory.embed' })
    const base = await f.api(apiNode)
    // ten texts: two memory.embed tasks (at most 8 texts each), run where the model is
    const records = Array.from({ length: 10 }, (_, i) => ({ id: `t${i}`, text: `text ${i}` }))
    const put = await call(base, 'POST', '/v1/memory/remote', { records })
    expect(put.status, JSON.stringify(put.json)).toBe(201)
    expect(embedded.sort()).toEqual(records.map(r => r.text).sort())
    // the API node's waits wake on their own copies: the model node counts its runs once their commits return
    await waitFor(() => modelNode.tasks!.executor.stats.completed >= 2, { what: 'both embed runs counted on the model node' })
    const found = await call(base, 'POST', '/v1/memory/remote/search', { text: 'text 3', k: 1 })
    expect(found.json.hits.map((h: { id: string }) => h.id)).toEqual(['t3'])
    // memory.put as a task: only nodes without a model run it, and its texts are embedded where the model is
    const s = taskNode.tasks!.service
    const { id } = await s.submit({ capability: 'memory.put', input: { collection: 'remote', records: [{ id: 'x', text: 'from a task' }] } })
    const view = await s.waitFor(id, 20_000)
    expect(view.record.final?.state, JSON.stringify(view.record.attempts.at(-1))).toBe('completed')
    expect(embedded).toContain('from a task')
  }, 60_000)

  it('memory.put, memory.search and memory.delete run as tasks on any capable peer (ctx.memory)', async () => {
    const net = await f.mesh(3, { tasks: { ...FAST_TASKS, presenceIntervalMs: 1_000, agents: MEMORY_AGENTS } })
    const s = net.nodes[0]!.tasks!.service
    const run = async (capability: string, input: unknown): Promise<any> => {
      const { id } = await s.submit({ capability, input })
      const view = await s.waitFor(id, 20_000)
      expect(view.record.final?.state, `${capability}: ${JSON.stringify(view.record.attempts.at(-1))}`).toBe('completed')
      return view.result?.value
    }
    const put = await run('memory.put', { collection: 'facts', records: [{ id: 'a', vector: axis(1), text: 'one' }, { id: 'b', vector: axis(2), text: 'two' }] })
    expect(put.records.map((r: any) => r.id)).toEqual(['a', 'b'])
    const found = await run('memory.search', { collection: 'facts', vector: axis(2), k: 1 })
    expect(found.hits).toEqual([expect.objectContaining({ id: 'b', text: 'two' })])
    expect(await run('memory.delete', { collection: 'facts', id: 'b' })).toEqual({ deleted: 'b', existed: true })
    expect(await run('memory.delete', { collection: 'facts', id: 'b' })).toEqual({ deleted: 'b', existed: false })
    expect((await run('memory.search', { collection: 'facts', vector: axis(2), k: 2 })).hits.map((h: any) => h.id)).toEqual(['a'])
    // an input the memory refuses fails its first attempt for good: another would be refused alike
    const { id } = await s.submit({ capability: 'memory.search', input: { collection: 'facts', vector: axis(0).map(() => 0), k: 1 }, maxAttempts: 3 })
    const refused = await s.waitFor(id, 20_000)
    expect(refused.record.final?.state).toBe('dead')
    expect(refused.record.attempts).toHaveLength(1)
    expect(refused.record.attempts[0]?.error).toMatch(/a vector of zeros/)
  }, 60_000)
})

describe('the memory capabilities\' published input schemas', () => {
  it('name what a collection may be called, so a door refuses a bad name before a task is made', () => {
    const schema = (memoryPutAgent.capabilities[0] as { inputSchema?: Record<string, unknown> }).inputSchema
    const records = [{ id: 'm1', vector: [1] }]
    expect(inputProblem(schema, { collection: 'bad name!', records })).toMatch(/^collection: /)
    expect(inputProblem(schema, { collection: 'x'.repeat(65), records })).toMatch(/^collection: /)
    expect(inputProblem(schema, { collection: 'facts.v2_a-b', records })).toBeUndefined()
  })
})
