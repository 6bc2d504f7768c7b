import { lazily } from '../../protocols/lazy.js'
import type OpenAI from 'openai'
import type { ClientOptions } from 'openai'

/** The official `openai` package: hundreds of modules, and most nodes (no model, no embeddings) never make a call. */
const openaiPackage = lazily(async () => (await import('openai')).default)

/** A client of the `openai` package, made (and the package loaded) on the first call that needs one. */
export function lazyOpenAI (options: ClientOptions): () => Promise<OpenAI> {
  return lazily(async () => new (await openaiPackage())(options))
}
