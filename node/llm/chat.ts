import { z } from 'zod'
import { CHAT_CAPABILITY, chatCapability } from '../../protocols/openai/models.js'
import { chatMessageSchema, chatToolSchema, toolChoiceSchema } from '../../protocols/openai/schema.js'
import { givesOneOf, publishedWithOneOf } from '../../protocols/tools/tool-schema.js'
import type { ChatResult } from '../../protocols/openai/schema.js'
import type { LlmConfig } from './config.js'
import type { Model } from './model.js'
import type { CapabilityInfo } from '../../protocols/gossip/index.js'
import type { Agent } from '../runtime/agent.js'
import type { ChatCompletionMessageParam, ChatCompletionTool, ChatCompletionToolChoiceOption } from 'openai/resources/chat/completions'

/** what a chat input must give one of */
export const PROMPT_OR_MESSAGES = ['prompt', 'messages'] as const

export const chatInput = z.object({
  prompt: z.string().min(1).optional(),
  messages: z.array(chatMessageSchema).min(1).max(10_000).optional(),
  /** plain `llm.chat` only; `llm.chat.<model>` runs its own model */
  model: z.string().optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().optional(),
  /** sent as max_completion_tokens (maxTokens as max_tokens): OpenAI's reasoning models take only this one */
  maxCompletionTokens: z.number().int().positive().optional(),
  /** OpenAI's `tools` and `tool_choice`, passed to the model as they are */
  tools: z.array(chatToolSchema).max(128).optional(),
  toolChoice: toolChoiceSchema.optional(),
  topP: z.number().min(0).max(1).optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).optional(),
  seed: z.number().int().optional(),
  responseFormat: z.looseObject({ type: z.string() }).optional(),
  parallelToolCalls: z.boolean().optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
  logitBias: z.record(z.string(), z.number().min(-100).max(100)).optional(),
  /** OpenAI's reasoning models: low, medium, high (others their own) */
  reasoningEffort: z.string().min(1).max(32).optional()
}).refine(givesOneOf(PROMPT_OR_MESSAGES), 'give prompt or messages')

export type ChatInput = z.infer<typeof chatInput>

/** The published schema says "prompt or messages" too: a door refuses an input with neither before a task is made. */
export const chatInputSchema = publishedWithOneOf(chatInput, PROMPT_OR_MESSAGES)

/**
 * `llm.chat`, the plain capability on the default model (or `input.model`), and one
 * `llm.chat.<model>` per served model, whose info names the model for presence and the
 * OpenAI-compatible door. Always streamed from the model: each token is a progress event
 * `{token}`, which reaches the task's submitter while the task runs.
 */
export function chatAgent (config: LlmConfig, model: Model): Agent<ChatInput> {
  const models = config.models ?? [config.model]
  const byCapability = new Map(models.map(m => [chatCapability(m), m]))
  const usage = '{prompt | messages (OpenAI format), tools?, toolChoice?, temperature?, maxTokens?, maxCompletionTokens?} gives {text, toolCalls?, finishReason, usage}'
  const capabilities: CapabilityInfo[] = [
    { name: CHAT_CAPABILITY, description: `a chat completion from ${config.model}: ${usage}`, inputSchema: chatInputSchema },
    ...[...byCapability].map(([name, m]) => ({ name, model: m, description: `a chat completion from ${m}: ${usage}`, inputSchema: chatInputSchema }))
  ]
  return {
    name: CHAT_CAPABILITY,
    capabilities,
    concurrency: 4,
    inputSchema: chatInput,
    run: async ctx => {
      const input = ctx.input
      const reply = await model.call(ctx, 'chat', {
        messages: (input.messages ?? [{ role: 'user', content: input.prompt as string }]) as ChatCompletionMessageParam[],
        model: byCapability.get(ctx.task.capability) ?? input.model,
        temperature: input.temperature,
        maxTokens: input.maxTokens,
        tools: input.tools as ChatCompletionTool[] | undefined,
        toolChoice: input.toolChoice as ChatCompletionToolChoiceOption | undefined,
        extra: dropUndefined({ max_completion_tokens: input.maxCompletionTokens, top_p: input.topP, stop: input.stop, seed: input.seed, response_format: input.responseFormat, parallel_tool_calls: input.parallelToolCalls, frequency_penalty: input.frequencyPenalty, presence_penalty: input.presencePenalty, logit_bias: input.logitBias, reasoning_effort: input.reasoningEffort })
      }, { used: 0 }, token => { ctx.progress({ token }) })
      const result: ChatResult = { text: reply.content, usage: reply.usage, finishReason: reply.finishReason ?? (reply.toolCalls.length > 0 ? 'tool_calls' : 'stop') }
      if (reply.toolCalls.length > 0) result.toolCalls = reply.toolCalls
      return result
    }
  }
}

function dropUndefined (o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
}
