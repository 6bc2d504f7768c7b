import type OpenAI from 'openai'
import type { ClientOptions } from 'openai'

let loading: Promise<typeof OpenAI> | undefined

/**
 * A client of the official `openai` package, loaded on the first call that needs one: it is
 * hundreds of modules and most nodes (no model, no embeddings) never make a call.
 */
export async function openaiClient (options: ClientOptions): Promise<OpenAI> {
  // a failed load (out of file descriptors, say) is tried again by the next call, not kept
  loading ??= import('openai').then(m => m.default, err => { loading = undefined; throw err })
  const Client = await loading
  return new Client(options)
}
