import OpenAI from 'openai'
import { UnrecoverableTaskError } from '../runtime/agent.js'
import { BudgetExceededError } from './errors.js'
import type { LlmConfig } from './config.js'
import type { AgentContext } from '../runtime/agent.js'
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions'

export interface ModelReply {
  content: string
  toolCalls: Array<{ id: string, name: string, arguments: string }>
  usage: { prompt: number, completion: number, total: number }
}

/** One OpenAI-compatible endpoint, shared by the LLM agents of a node. */
export class Model {
  readonly config: LlmConfig
  private readonly client: OpenAI

  constructor (config: LlmConfig) {
    this.config = config
    this.client = new OpenAI({ apiKey: config.apiKey, baseURL: config.baseURL, maxRetries: config.maxRetries ?? 3, timeout: config.timeoutMs ?? 60_000 })
  }

  /**
   * One model call, as a durable step of the task: after a takeover, a journaled call is replayed
   * and not paid for again. Streams when `onToken` is given. Counts tokens against the task's budget.
   */
  async call (ctx: AgentContext, key: string, req: { messages: ChatCompletionMessageParam[], model?: string, temperature?: number, maxTokens?: number, tools?: ChatCompletionTool[] }, budget: { used: number }, onToken?: (t: string) => void): Promise<ModelReply> {
    const reply = await ctx.step(key, async () => {
      try {
        return await this.request(ctx, req, onToken)
      } catch (err: any) {
        // a 4xx other than 429 will not get better on retry
        if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500 && err.status !== 429) throw new UnrecoverableTaskError(`model refused the request (${String(err.status)}): ${String(err.message)}`)
        throw err
      }
    })
    budget.used += reply.usage.total
    const max = this.config.maxTokensPerTask ?? 100_000
    if (budget.used > max) throw new BudgetExceededError(`token budget spent: ${budget.used} of ${max}`)
    return reply
  }

  private async request (ctx: AgentContext, req: { messages: ChatCompletionMessageParam[], model?: string, temperature?: number, maxTokens?: number, tools?: ChatCompletionTool[] }, onToken?: (t: string) => void): Promise<ModelReply> {
    const base = {
      model: req.model ?? this.config.model,
      messages: req.messages,
      ...(req.temperature === undefined ? {} : { temperature: req.temperature }),
      ...(req.maxTokens === undefined ? {} : { max_tokens: req.maxTokens }),
      ...(req.tools === undefined || req.tools.length === 0 ? {} : { tools: req.tools })
    }
    if (onToken === undefined) {
      const res = await this.client.chat.completions.create(base, { signal: ctx.signal })
      const msg = res.choices[0]?.message
      return {
        content: msg?.content ?? '',
        toolCalls: (msg?.tool_calls ?? []).flatMap(c => c.type === 'function' ? [{ id: c.id, name: c.function.name, arguments: c.function.arguments }] : []),
        usage: { prompt: res.usage?.prompt_tokens ?? 0, completion: res.usage?.completion_tokens ?? 0, total: res.usage?.total_tokens ?? 0 }
      }
    }
    const stream = await this.client.chat.completions.create({ ...base, stream: true, stream_options: { include_usage: true } }, { signal: ctx.signal })
    let content = ''
    let usage = { prompt: 0, completion: 0, total: 0 }
    for await (const chunk of stream) {
      const token = chunk.choices[0]?.delta?.content
      if (token !== undefined && token !== null && token !== '') {
        content += token
        onToken(token)
      }
      if (chunk.usage !== undefined && chunk.usage !== null) usage = { prompt: chunk.usage.prompt_tokens, completion: chunk.usage.completion_tokens, total: chunk.usage.total_tokens }
    }
    return { content, toolCalls: [], usage }
  }
}
