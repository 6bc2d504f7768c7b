import type { ChatCompletionRequest, ChatResult } from './schema.js'

/** The `llm.chat` input of a chat completion request: OpenAI's fields in the agent's names. */
export function chatTaskInput (req: ChatCompletionRequest): Record<string, unknown> {
  const input: Record<string, unknown> = {
    messages: req.messages,
    temperature: req.temperature,
    // each under its own name: reasoning models refuse max_tokens, and some servers know only it
    maxTokens: req.max_tokens,
    maxCompletionTokens: req.max_completion_tokens,
    tools: req.tools,
    toolChoice: req.tool_choice,
    topP: req.top_p,
    stop: req.stop,
    seed: req.seed,
    responseFormat: req.response_format,
    parallelToolCalls: req.parallel_tool_calls,
    frequencyPenalty: req.frequency_penalty,
    presencePenalty: req.presence_penalty,
    logitBias: req.logit_bias,
    reasoningEffort: req.reasoning_effort
  }
  // null and absent alike: not sent to the model
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== null))
}

export interface Usage { prompt_tokens: number, completion_tokens: number, total_tokens: number }

export function usageOf (result: ChatResult): Usage {
  return { prompt_tokens: result.usage.prompt, completion_tokens: result.usage.completion, total_tokens: result.usage.total }
}

function toolCallsOf (result: ChatResult): Array<{ id: string, type: 'function', function: { name: string, arguments: string } }> | undefined {
  if (result.toolCalls === undefined || result.toolCalls.length === 0) return undefined
  return result.toolCalls.map(c => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }))
}

function finishOf (result: ChatResult): string {
  return result.finishReason ?? (result.toolCalls !== undefined && result.toolCalls.length > 0 ? 'tool_calls' : 'stop')
}

/** Where a completion came from: the id names the mesh task, `created` is in seconds. */
export interface CompletionMeta {
  id: string
  created: number
  model: string
}

/** A `chat.completion` from an llm.chat result. */
export function completionOf (meta: CompletionMeta, result: ChatResult): Record<string, unknown> {
  const toolCalls = toolCallsOf(result)
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [{
      index: 0,
      message: {
        role: 'assistant',
        // an answer that is only tool calls has no content, as OpenAI sends it
        content: result.text === '' && toolCalls !== undefined ? null : result.text,
        refusal: null,
        ...(toolCalls === undefined ? {} : { tool_calls: toolCalls })
      },
      logprobs: null,
      finish_reason: finishOf(result)
    }],
    usage: usageOf(result)
  }
}

/** One `chat.completion.chunk` with a delta (or none: the usage chunk has no choices). */
export function chunkOf (meta: CompletionMeta, delta: Record<string, unknown> | undefined, finishReason: string | null = null, usage?: Usage | null): Record<string, unknown> {
  return {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: delta === undefined ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(usage === undefined ? {} : { usage })
  }
}

/** The tool calls of a result as stream deltas: each call whole in one delta, as OpenAI's clients accept. */
export function toolCallDeltas (result: ChatResult): Array<Record<string, unknown>> {
  return (toolCallsOf(result) ?? []).map((c, index) => ({ tool_calls: [{ index, ...c }] }))
}

export { finishOf }
