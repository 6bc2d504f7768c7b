import { readFile } from 'node:fs/promises'
import { InvalidConfigError } from '../errors.js'
import { envValue } from '../env.js'

export interface LlmConfig {
  /** the default model: plain `llm.chat`, `agent` and `plan` use it */
  model: string
  /** every model this node serves, `model` first; each is offered as `llm.chat.<name>`. @default [model] */
  models?: string[]
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
  /** one model, a comma-separated list, or several of either (a repeated flag) */
  llmModel?: string | string[]
  llmApiKeyFile?: string
}

/** Model names from a flag, a variable or a config file: comma lists and repeats, trimmed, each once, in order. */
export function modelList (value: string | string[] | undefined): string[] {
  const all = (Array.isArray(value) ? value : value === undefined ? [] : [value]).flatMap(v => v.split(',')).map(m => m.trim()).filter(m => m !== '')
  return [...new Set(all)]
}

/**
 * The models a node uses, from flags or OPENAI_API_KEY, OPENAI_BASE_URL and AGENTMESH_MODEL (a
 * comma list); flags win, and the first model is the default. No model named: no LLM capabilities
 * on this node. A local server (llama.cpp, vLLM, Ollama) needs no key; a placeholder is sent.
 */
export async function resolveLlmConfig (flags: LlmFlags, env: NodeJS.ProcessEnv = process.env): Promise<LlmConfig | undefined> {
  const flagged = modelList(flags.llmModel)
  // a list that names no model (",", blanks) turned the LLM off without a word
  if (flags.llmModel !== undefined && flagged.length === 0) throw new InvalidConfigError('--llm-model (llmModel) names no model: give a model name, or leave it out')
  const fromEnv = modelList(env.AGENTMESH_MODEL)
  if (flagged.length === 0 && envValue(env, 'AGENTMESH_MODEL') !== undefined && fromEnv.length === 0) throw new InvalidConfigError('AGENTMESH_MODEL names no model: give a model name, or unset it')
  const models = flagged.length > 0 ? flagged : fromEnv
  const model = models[0]
  if (model === undefined) {
    // a key file or URL given without a model is still checked: a bad one was ignored without a word
    if (flags.llmApiKeyFile !== undefined || flags.llmBaseUrl !== undefined) await resolveLlmEndpoint(flags, env)
    return undefined
  }
  const tooLong = models.find(m => m.length > 256)
  if (tooLong !== undefined) throw new InvalidConfigError(`model name longer than 256 characters: "${tooLong.slice(0, 40)}..."`)
  return { model, models, ...await resolveLlmEndpoint(flags, env) }
}

/** The endpoint and key (flags, else OPENAI_BASE_URL and OPENAI_API_KEY), for chat and embeddings alike. */
export async function resolveLlmEndpoint (flags: Omit<LlmFlags, 'llmModel'>, env: NodeJS.ProcessEnv = process.env): Promise<{ baseURL?: string, apiKey: string }> {
  let apiKey = env.OPENAI_API_KEY
  if (flags.llmApiKeyFile !== undefined) {
    try {
      apiKey = (await readFile(flags.llmApiKeyFile, 'utf8')).trim()
    } catch (err: any) {
      throw new InvalidConfigError(`cannot read --llm-api-key-file ${flags.llmApiKeyFile}: ${err.code ?? err.message}`)
    }
    // an empty key file sent the placeholder key, and the model refused every call
    if (apiKey === '') throw new InvalidConfigError(`--llm-api-key-file ${flags.llmApiKeyFile} holds no key`)
  }
  const baseURL = flags.llmBaseUrl ?? envValue(env, 'OPENAI_BASE_URL')
  if (baseURL !== undefined) {
    const source = flags.llmBaseUrl !== undefined ? '--llm-base-url (llmBaseUrl)' : 'OPENAI_BASE_URL'
    let protocol: string
    try { protocol = new URL(baseURL).protocol } catch { throw new InvalidConfigError(`${source} is not a URL: "${baseURL}"`) }
    if (protocol !== 'http:' && protocol !== 'https:') throw new InvalidConfigError(`${source} must be an http or https URL, not "${baseURL}"`)
  }
  return { baseURL, apiKey: apiKey !== undefined && apiKey !== '' ? apiKey : 'no-key' }
}
