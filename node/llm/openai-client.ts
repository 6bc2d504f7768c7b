import type OpenAI from 'openai'
import type { ClientOptions } from 'openai'

let loading: Promise<typeof OpenAI> | undefined

/**
 * A client of the official `openai` package, loaded on the first call that needs one: it is
 * hundreds of modules and most nodes (no model, no embeddings) never make a call.
 */
export async function openaiClient (options: ClientOptions): Promise<OpenAI> {
  loading ??= import('openai').then(m => m.default)
  const Client = await loading
  return new Client(options)
}
