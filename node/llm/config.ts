import { readFile } from 'node:fs/promises'
import { InvalidConfigError } from '../errors.js'

export interface LlmConfig {
  model: string
  baseURL?: string
  apiKey: string
  /** per model call. @default 60_000 */
  timeoutMs?: number
  /** retries of a 429 or 5xx, honouring Retry-After (the openai package's own). @default 3 */
  maxRetries?: number
  /** tool-using agent: model calls before it must answer. @default 8 */
  maxSteps?: number
  /** tokens (prompt + completion) one task may spend across its calls. @default 100_000 */
  maxTokensPerTask?: number
}

export interface LlmFlags {
  llmBaseUrl?: string
  llmModel?: string
  llmApiKeyFile?: string
}

/**
 * The model a node uses, from flags or OPENAI_API_KEY, OPENAI_BASE_URL and AGENTMESH_MODEL; flags
 * win. No model named: no LLM capabilities on this node. A local server (llama.cpp, vLLM, Ollama)
 * needs no key; a placeholder is sent.
 */
export async function resolveLlmConfig (flags: LlmFlags, env: NodeJS.ProcessEnv = process.env): Promise<LlmConfig | undefined> {
  const model = flags.llmModel ?? env.AGENTMESH_MODEL
  if (model === undefined || model === '') return undefined
  let apiKey = env.OPENAI_API_KEY
  if (flags.llmApiKeyFile !== undefined) {
    try {
      apiKey = (await readFile(flags.llmApiKeyFile, 'utf8')).trim()
    } catch (err: any) {
      throw new InvalidConfigError(`cannot read --llm-api-key-file ${flags.llmApiKeyFile}: ${err.code ?? err.message}`)
    }
  }
  const baseURL = flags.llmBaseUrl ?? env.OPENAI_BASE_URL
  if (baseURL !== undefined) {
    try { void new URL(baseURL) } catch { throw new InvalidConfigError(`--llm-base-url is not a URL: "${baseURL}"`) }
  }
  return { model, baseURL, apiKey: apiKey !== undefined && apiKey !== '' ? apiKey : 'no-key' }
}
