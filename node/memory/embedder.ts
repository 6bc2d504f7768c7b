import { lazyOpenAI } from '../llm/openai-client.js'
import { EmbeddingsUnavailableError } from './errors.js'
import type { Embed } from './memory-layer.js'

export interface EmbedderInit {
  model: string
  baseURL?: string
  apiKey: string
  /** per call. @default 30_000 */
  timeoutMs?: number
}

/** Embeddings from an OpenAI-compatible endpoint through the official client, which retries 429 and 5xx. */
export function openaiEmbedder (init: EmbedderInit): Embed {
  const client = lazyOpenAI({ apiKey: init.apiKey, baseURL: init.baseURL, timeout: init.timeoutMs ?? 30_000 })
  return async texts => {
    try {
      // floats asked for by name: left out, the client asks for base64 and decodes it, which turns
      // the plain arrays many OpenAI-compatible servers send anyway into garbage vectors
      const res = await (await client()).embeddings.create({ model: init.model, input: texts, encoding_format: 'float' })
      return [...res.data].sort((a, b) => a.index - b.index).map(d => d.embedding)
    } catch (err: any) {
      throw new EmbeddingsUnavailableError(`embeddings from ${init.model} failed: ${String(err.message)}`, { cause: err })
    }
  }
}
