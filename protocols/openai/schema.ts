import { z } from 'zod'

/**
 * A message in OpenAI's chat format: system, developer, user, assistant (with tool_calls) or tool
 * (with tool_call_id); content a string, content parts, or null for an assistant that called tools.
 * Fields it does not name pass through to the model as they are.
 */
export const chatMessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string() })), z.null()]).optional(),
  name: z.string().max(256).optional(),
  tool_calls: z.array(z.looseObject({
    id: z.string().min(1).max(256),
    type: z.string(),
    function: z.looseObject({ name: z.string().min(1).max(256), arguments: z.string() }).optional()
  })).max(128).optional(),
  tool_call_id: z.string().min(1).max(256).optional()
}).refine(m => m.role !== 'tool' || m.tool_call_id !== undefined, 'a tool message needs tool_call_id')
  .refine(m => m.role === 'assistant' || (m.content !== undefined && m.content !== null), 'only an assistant message may have no content')

export type ChatMessage = z.infer<typeof chatMessageSchema>

/**
 * A tool the model may call (`{type: 'function', function: {name, description?, parameters?}}`),
 * passed through. A function tool needs its function and name, as OpenAI's API says (400): one
 * without was passed to the model, which failed or ignored it.
 */
export const chatToolSchema = z.looseObject({ type: z.string() }).refine(t => t.type !== 'function' || isNamedFunction((t as { function?: unknown }).function), { message: 'a function tool needs function: {name, description?, parameters?}, its name 1-256 characters', path: ['function'] })

function isNamedFunction (f: unknown): boolean {
  const name = (f as { name?: unknown } | null | undefined)?.name
  return typeof f === 'object' && f !== null && !Array.isArray(f) && typeof name === 'string' && name.length > 0 && name.length <= 256
}

/** `none`, `auto`, `required`, or a named tool. */
export const toolChoiceSchema = z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })])

/** The body of `POST /v1/chat/completions`: the fields this gateway acts on; others are ignored. */
export const chatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1).max(256),
  messages: z.array(chatMessageSchema).min(1).max(10_000),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  tools: z.array(chatToolSchema).max(128).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  seed: z.number().int().nullish(),
  response_format: z.looseObject({ type: z.string() }).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string().regex(/^\d{1,7}$/, 'token ids'), z.number().min(-100).max(100)).nullish(),
  reasoning_effort: z.string().min(1).max(32).nullish(),
  n: z.number().int().min(1).max(1, 'only n = 1 is supported').nullish(),
  // asked for, they would come back null: refused, as n > 1 is, rather than answered without
  logprobs: z.literal(false, 'logprobs are not supported').nullish(),
  top_logprobs: z.literal(0, 'logprobs are not supported').nullish()
}).refine(r => r.stream === true || r.stream_options == null, { message: 'stream_options is only allowed when stream is true', path: ['stream_options'] })

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>

/** What an `llm.chat` task answers (node/llm/chat.ts): `toolCalls` only when the model called tools. */
export const chatResultSchema = z.object({
  text: z.string(),
  usage: z.object({ prompt: z.number(), completion: z.number(), total: z.number() }),
  finishReason: z.string().optional(),
  toolCalls: z.array(z.object({ id: z.string(), name: z.string(), arguments: z.string() })).optional()
})

export type ChatResult = z.infer<typeof chatResultSchema>
