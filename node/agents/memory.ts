import { z } from 'zod'
import { COLLECTION, MAX_K, MAX_MEMORY_BATCH, MAX_TEXT_BYTES, filterSchema, metadataSchema, vectorSchema } from '../../protocols/memory/index.js'
import { EMBED_CAPABILITY, TEXTS_PER_EMBED_TASK } from '../memory/remote-embed.js'
import { UnrecoverableTaskError } from '../runtime/agent.js'
import { withOneOfKeys } from '../../protocols/tools/tool-schema.js'
import type { Embed } from '../memory/memory-layer.js'
import type { Agent } from '../runtime/agent.js'

// the pattern in the published schema: the MCP and A2A doors refuse a bad name before a task is made
const collection = z.string().regex(COLLECTION).describe('the collection: 1-64 letters, digits, ".", "_" or "-"')
const record = z.object({ id: z.string().min(1).max(256), text: z.string().max(MAX_TEXT_BYTES).optional(), vector: vectorSchema.optional(), metadata: metadataSchema.optional() }).strict()
const putInput = z.object({ collection, records: z.array(record).min(1).max(MAX_MEMORY_BATCH) }).strict()
const searchInput = z.object({ collection, text: z.string().min(1).max(MAX_TEXT_BYTES).optional(), vector: vectorSchema.optional(), k: z.number().int().min(1).max(MAX_K).optional(), filter: filterSchema.optional() }).strict()
const deleteInput = z.object({ collection, id: z.string().min(1).max(256) }).strict()
const embedInput = z.object({ texts: z.array(z.string().min(1).max(MAX_TEXT_BYTES)).min(1).max(TEXTS_PER_EMBED_TASK) }).strict()

/** The JSON schema an LLM agent sees for the capability's input (memory as tools). */
const jsonSchema = (schema: z.ZodType): Record<string, unknown> => z.toJSONSchema(schema) as Record<string, unknown>

/** An input the memory refuses (a vector of zeros, a size the collection does not have) is refused again by every attempt: not retried. */
async function noRetryOnRefusal<T> (run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err: any) {
    if (err?.name === 'InvalidMemoryError') throw new UnrecoverableTaskError(String(err.message))
    throw err
  }
}

/** memory.put / memory.search / memory.delete: vector memory as capabilities, for tasks and for tool-using agents. */
export const memoryPutAgent: Agent<z.infer<typeof putInput>> = {
  name: 'memory.put',
  capabilities: [{ name: 'memory.put', description: 'stores records {id, text?, vector?, metadata?} in a collection of the mesh\'s vector memory', inputSchema: jsonSchema(putInput) }],
  concurrency: 8,
  inputSchema: putInput,
  run: async ctx => ({ records: await noRetryOnRefusal(async () => ctx.memory.put(ctx.input.collection, ctx.input.records)) })
}

export const memorySearchAgent: Agent<z.infer<typeof searchInput>> = {
  name: 'memory.search',
  capabilities: [{ name: 'memory.search', description: 'the k records of a collection nearest to a text or a vector, with a metadata filter', inputSchema: withOneOfKeys(jsonSchema(searchInput), ['text', 'vector']) }],
  concurrency: 8,
  inputSchema: searchInput,
  run: async ctx => {
    const { collection: name, ...query } = ctx.input
    return noRetryOnRefusal(async () => ctx.memory.search(name, query))
  }
}

export const memoryDeleteAgent: Agent<z.infer<typeof deleteInput>> = {
  name: 'memory.delete',
  capabilities: [{ name: 'memory.delete', description: 'deletes a record from a collection', inputSchema: jsonSchema(deleteInput) }],
  concurrency: 8,
  inputSchema: deleteInput,
  run: async ctx => {
    const existed = await noRetryOnRefusal(async () => ctx.memory.delete(ctx.input.collection, ctx.input.id))
    return { deleted: ctx.input.id, existed }
  }
}

export const MEMORY_AGENTS: Agent[] = [memoryPutAgent, memorySearchAgent, memoryDeleteAgent]

/**
 * memory.embed, on a node with an embeddings model (a daemon's built-in, see resolveAgents):
 * vectors for texts, for the memory of peers that have no model of their own (remote-embed.ts).
 */
export function memoryEmbedAgent (embed: Embed): Agent<z.infer<typeof embedInput>> {
  return {
    name: EMBED_CAPABILITY,
    capabilities: [{ name: EMBED_CAPABILITY, description: `vectors for up to ${TEXTS_PER_EMBED_TASK} texts from the embeddings model of vector memory`, inputSchema: jsonSchema(embedInput) }],
    concurrency: 8,
    inputSchema: embedInput,
    run: async ctx => ({ vectors: await embed(ctx.input.texts) })
  }
}
