import { UnrecoverableTaskError } from '../runtime/agent.js'
import { BudgetExceededError, ModelAnswerError, ModelRateLimitedError } from './errors.js'
import { lazyOpenAI } from './openai-client.js'
import type { LlmConfig } from './config.js'
import type { AgentContext } from '../runtime/agent.js'
import type OpenAI from 'openai'
import type { ChatCompletionMessageParam, ChatCompletionTool, ChatCompletionToolChoiceOption } from 'openai/resources/chat/completions'

export interface ModelReply {
  content: string
  toolCalls: Array<{ id: string, name: string, arguments: string }>
  usage: { prompt: number, completion: number, total: number }
  /** why the model stopped: stop, length, tool_calls, content_filter. Absent in steps journaled before it was kept. */
  finishReason?: string
}

export interface ModelRequest {
  messages: ChatCompletionMessageParam[]
  model?: string
  temperature?: number
  maxTokens?: number
  tools?: ChatCompletionTool[]
  toolChoice?: ChatCompletionToolChoiceOption
  /** more request fields in the API's own names (top_p, stop, seed, response_format), sent as they are */
  extra?: Record<string, unknown>
}

/** One OpenAI-compatible endpoint, shared by the LLM agents of a node. */
export class Model {
  readonly config: LlmConfig
  private readonly openai: () => Promise<OpenAI>

  constructor (config: LlmConfig) {
    this.config = config
    this.openai = lazyOpenAI({ apiKey: config.apiKey, baseURL: config.baseURL, maxRetries: config.maxRetries ?? 3, timeout: config.timeoutMs ?? 60_000 })
  }

  /**
   * One model call, as a durable step of the task: after a takeover, a journaled call is replayed
   * and not paid for again. Streams when `onToken` is given. Counts tokens against the task's budget.
   */
  async call (ctx: AgentContext, key: string, req: ModelRequest, budget: { used: number }, onToken?: (t: string) => void): Promise<ModelReply> {
    const reply = await ctx.step(key, async () => {
      try {
        return await this.request(ctx, req, onToken)
      } catch (err: any) {
        // a 4xx other than 429 will not get better on retry
        if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500 && err.status !== 429) throw new UnrecoverableTaskError(refusal(err))
        if (err?.status === 429) throw new ModelRateLimitedError(refusal(err, 'rate-limited'))
        throw err
      }
    })
    budget.used += reply.usage.total
    const max = this.config.maxTokensPerTask ?? 100_000
    if (budget.used > max) throw new BudgetExceededError(`token budget spent: ${budget.used} of ${max}`)
    return reply
  }

  private async request (ctx: AgentContext, req: ModelRequest, onToken?: (t: string) => void): Promise<ModelReply> {
    const base = {
      ...req.extra,
      model: req.model ?? this.config.model,
      messages: req.messages,
      ...(req.temperature === undefined ? {} : { temperature: req.temperature }),
      ...(req.maxTokens === undefined ? {} : { max_tokens: req.maxTokens }),
      ...(req.tools === undefined || req.tools.length === 0 ? {} : { tools: req.tools }),
      ...(req.toolChoice === undefined ? {} : { tool_choice: req.toolChoice })
    }
    if (onToken === undefined) {
      const res = await (await this.openai()).chat.completions.create({ ...base, stream: false }, { signal: ctx.signal })
      const choice = res.choices?.[0]
      // an empty success was made of a reply with no answer in it, and the task completed with ''
      if (choice === undefined) throw new ModelAnswerError(`${String(base.model)} answered with no choice: a malformed or cut-off reply`)
      const msg = choice.message
      return {
        content: contentText(msg?.content, String(base.model)),
        toolCalls: (msg?.tool_calls ?? []).flatMap(c => c.type === 'function' ? [{ id: text(c.id), name: text(c.function?.name), arguments: text(c.function?.arguments) }] : []),
        usage: tokens(res.usage),
        finishReason: choice?.finish_reason ?? 'stop'
      }
    }
    const stream = await (await this.openai()).chat.completions.create({ ...base, stream: true, stream_options: { include_usage: true } }, { signal: ctx.signal })
    let content = ''
    let usage = { prompt: 0, completion: 0, total: 0 }
    let finishReason: string | undefined
    let usageSent = false
    let choices = 0
    // a tool call arrives in pieces: the first delta of an index names it, later ones add arguments.
    // A Map, and only small integer indexes: the index is the model's, and `calls["__proto__"]` of
    // an array was every array's prototype
    const calls = new Map<number, { id: string, name: string, arguments: string }>()
    for await (const chunk of stream) {
      const choice = chunk.choices?.[0]
      if (choice !== undefined) choices++
      const token = contentText(choice?.delta?.content, String(base.model))
      if (token !== '') {
        content += token
        onToken(token)
      }
      for (const d of choice?.delta?.tool_calls ?? []) {
        // a server that sends one call may leave its index out
        const index = d.index ?? 0
        if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_TOOL_CALLS) throw new ModelAnswerError(`${String(base.model)} streamed a tool call at index ${JSON.stringify(index).slice(0, 40)}, not 0 to ${MAX_TOOL_CALLS - 1}: a malformed reply`)
        const call = calls.get(index) ?? { id: '', name: '', arguments: '' }
        calls.set(index, call)
        if (d.id !== undefined && d.id !== null) call.id = text(d.id)
        call.name += text(d.function?.name)
        call.arguments += text(d.function?.arguments)
      }
      if (choice?.finish_reason !== undefined && choice.finish_reason !== null) finishReason = choice.finish_reason
      if (chunk.usage !== undefined && chunk.usage !== null) {
        usage = tokens(chunk.usage)
        usageSent = true
      }
    }
    // a server ends an answer with its reason, or (asked for usage, as here) with the usage; some
    // gateways drop the reason, none ends with neither
    const ended = finishReason !== undefined || usageSent
    // the client ends a stream quietly when its signal aborts (the task's timeout, a cancel): what
    // came so far was taken, journaled and certified as the whole answer. One that ended first is whole
    if (!ended) ctx.signal.throwIfAborted()
    // a reply that was no stream (a cut-off JSON body), or a stream with no choice in it
    if (choices === 0) throw new ModelAnswerError(`${String(base.model)} streamed no choice: a malformed or cut-off reply`)
    // a stream closed before its end was cut off
    if (!ended) throw new ModelAnswerError(`${String(base.model)} ended its stream with no finish_reason and no usage: a cut-off reply`)
    const toolCalls = [...calls.entries()].sort(([a], [b]) => a - b).map(([, c]) => c)
    return { content, toolCalls, usage, finishReason: finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop') }
  }
}

/** The most tool calls one streamed reply may make (indexes 0 to this less one). */
const MAX_TOOL_CALLS = 128

/** A model's string field as text: '' for none, a number or an object (arguments some servers send as one) as JSON. */
function text (value: unknown): string {
  if (value === undefined || value === null) return ''
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** A message's content as text: a string, none, or an array of text parts (as some servers send it); anything else is a malformed reply. */
function contentText (value: unknown, model: string): string {
  if (value === undefined || value === null) return ''
  if (typeof value === 'string') return value
  if (Array.isArray(value) && value.every(p => typeof p === 'object' && p !== null && (p.type !== 'text' || typeof p.text === 'string'))) {
    return value.map(p => p.type === 'text' ? p.text as string : '').join('')
  }
  throw new ModelAnswerError(`${model} answered content that is no text: a malformed reply`)
}

/** A model's token counts, 0 for any that is not a count: they are summed against the task's budget. */
function tokens (usage: { prompt_tokens?: unknown, completion_tokens?: unknown, total_tokens?: unknown } | null | undefined): ModelReply['usage'] {
  const count = (n: unknown): number => Number.isSafeInteger(n) && (n as number) >= 0 ? n as number : 0
  return { prompt: count(usage?.prompt_tokens), completion: count(usage?.completion_tokens), total: count(usage?.total_tokens) }
}

/**
 * A model's 4xx as a task's reason: `model refused the request (STATUS[, CODE]): MESSAGE` (a 429:
 * `model rate-limited the request ...`), which the
 * OpenAI door reads back into its answer. The client library's message starts with the status
 * already ("400 ..."), which the door's client would print twice.
 */
function refusal (err: { status: number, message?: unknown, code?: unknown }, what: 'refused' | 'rate-limited' = 'refused'): string {
  const message = String(err.message ?? '').replace(new RegExp(`^${err.status} `), '')
  const code = typeof err.code === 'string' && /^[\w.-]{1,64}$/.test(err.code) ? `, ${err.code}` : ''
  return `model ${what} the request (${err.status}${code}): ${message}`
}
