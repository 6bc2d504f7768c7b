import { z } from 'zod'
import { MAX_WAIT_MS } from '../../protocols/lease/index.js'
import { UnrecoverableTaskError } from '../runtime/agent.js'
import { BudgetExceededError, InvalidPlanError } from './errors.js'
import { PROMPT_OR_MESSAGES, chatAgent } from './chat.js'
import { Model } from './model.js'
import { givesOneOf, publishedWithOneOf, toolInput, toolSchema } from '../../protocols/tools/tool-schema.js'
import { parsePlan, runPlan } from './plan.js'
import { EMBED_CAPABILITY } from '../memory/remote-embed.js'
import type { LlmConfig } from './config.js'
import type { CapabilityInfo } from '../../protocols/gossip/index.js'
import type { Agent, AgentContext } from '../runtime/agent.js'
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions'

const messagesSchema = z.array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })).min(1)
const promptOrMessages = {
  prompt: z.string().min(1).optional(),
  messages: messagesSchema.optional(),
  model: z.string().optional()
}
const agentInput = z.object({
  ...promptOrMessages,
  maxSteps: z.number().int().min(1).max(50).optional(),
  tools: z.array(z.string()).optional(),
  /** capabilities whose calls wait for a person's approval (besides those marked needsApproval) */
  needsApproval: z.array(z.string()).optional(),
  /** how long one approval may take; past it the attempt fails. @default the node's defaultWaitMs */
  approvalTimeoutMs: z.number().int().min(1).max(MAX_WAIT_MS).optional()
})
  .refine(givesOneOf(PROMPT_OR_MESSAGES), 'give prompt or messages')
const planInput = z.object({ goal: z.string().min(1), model: z.string().optional() })

/** What `agentmesh approve` sends: the decision on one tool call. */
const approvalSchema = z.object({ approved: z.boolean(), reason: z.string().max(4096).optional() })
// in its own module, so that the CLI's signal command reads it without loading the agents
import { APPROVAL_PREFIX } from './approval.js'
export { APPROVAL_PREFIX }

function toMessages (input: { prompt?: string, messages?: Array<{ role: string, content: string }> }, system?: string): ChatCompletionMessageParam[] {
  const base = (input.messages ?? [{ role: 'user', content: input.prompt as string }]) as ChatCompletionMessageParam[]
  return system === undefined ? base : [{ role: 'system', content: system }, ...base]
}

/** Tool names the API accepts ([A-Za-z0-9_-], 64 at most) for capability names (which may hold dots). */
export const toolName = (capability: string): string => capability.replace(/\./g, '__')

/** Capabilities no model is handed as a tool: the planners (an agent would recurse into one), and memory.embed (kilobytes of floats into its context; memory.search embeds for it). */
const NOT_TOOLS = ['agent', 'plan', EMBED_CAPABILITY]

/**
 * The mesh's live capabilities as tools, but NOT_TOOLS. Each tool's parameters are an object
 * schema, as the tool APIs require: a capability whose input is not an object is wrapped as
 * `{input}` (see tool-schema.ts).
 */
export function meshTools (capabilities: CapabilityInfo[], only?: string[]): { tools: ChatCompletionTool[], byName: Map<string, { capability: string, wrapped: boolean, needsApproval: boolean }> } {
  const usable = capabilities.filter(c => !NOT_TOOLS.includes(c.name) && (only === undefined || only.includes(c.name)))
  const byName = new Map<string, { capability: string, wrapped: boolean, needsApproval: boolean }>()
  const tools: ChatCompletionTool[] = usable.map(c => {
    const { parameters, wrapped } = toolSchema(c.inputSchema)
    byName.set(toolName(c.name), { capability: c.name, wrapped, needsApproval: c.needsApproval === true })
    return { type: 'function', function: { name: toolName(c.name), description: c.description ?? c.name, parameters } }
  })
  return { tools, byName }
}

/**
 * The LLM agents of a node with a model configured: `llm.chat` (and `llm.chat.<model>` for each
 * model), `agent` (a tool-using loop whose tools are the mesh's capabilities, each call a subtask
 * any capable peer may run) and `plan` (a DAG of steps from the model, run on the mesh in
 * dependency order). Every model call and tool
 * result is a durable step: a peer that takes a task over resumes from the journal.
 */
export function llmAgents (config: LlmConfig): Agent[] {
  const model = new Model(config)
  // llm.chat and llm.chat.<model> for each served model: node/llm/chat.ts
  const chat = chatAgent(config, model)
  const agent: Agent<z.infer<typeof agentInput>> = {
    name: 'agent',
    capabilities: [{ name: 'agent', description: 'a tool-using agent: the mesh\'s capabilities are its tools; {prompt | messages, maxSteps?, tools?} gives {text, steps, toolCalls}', inputSchema: publishedWithOneOf(agentInput, PROMPT_OR_MESSAGES) }],
    concurrency: 2,
    inputSchema: agentInput,
    run: async ctx => runAgent(ctx, model, config)
  }
  const plan: Agent<z.infer<typeof planInput>> = {
    name: 'plan',
    capabilities: [{ name: 'plan', description: 'a planner: the model writes a DAG of steps over the mesh\'s capabilities, the steps run on the mesh; {goal} gives {plan, results}' }],
    concurrency: 2,
    inputSchema: planInput,
    run: async ctx => {
      const budget = { used: 0 }
      const caps = ctx.capabilities().filter(c => !NOT_TOOLS.includes(c.name))
      const system = 'You plan work for a mesh of agents. Reply with JSON only: {"steps":[{"id":"a","capability":"<one of the capabilities>","input":<JSON>,"dependsOn":["<ids>"]}]}. ' +
        'A string "$ref:<id>" anywhere in an input is replaced by that step\'s result; the step must list <id> in its dependsOn. Capabilities: ' +
        JSON.stringify(caps.map(c => ({ name: c.name, description: c.description, inputSchema: c.inputSchema })))
      const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: system }, { role: 'user', content: ctx.input.goal }]
      const first = await model.call(ctx, 'plan:0', { messages, model: ctx.input.model }, budget)
      let parsed = parsePlan(first.content, new Set(caps.map(c => c.name)))
      if (!parsed.ok) {
        // one repair round, told what was wrong
        ctx.log('plan invalid, asking for a repair: %s', parsed.error)
        const repair = await model.call(ctx, 'plan:1', { messages: [...messages, { role: 'assistant', content: first.content }, { role: 'user', content: `That plan is invalid: ${parsed.error}. Reply with the corrected JSON only.` }], model: ctx.input.model }, budget)
        parsed = parsePlan(repair.content, new Set(caps.map(c => c.name)))
        // a capability no live peer offers may be offered by the next attempt (a peer restarting): retried
        if (!parsed.ok) throw new InvalidPlanError(`the model's plan is invalid after one repair: ${parsed.error}`, parsed.unoffered !== true)
      }
      const results = await runPlan(ctx, parsed.plan)
      return { plan: parsed.plan.steps, results, usage: budget.used }
    }
  }
  return [chat, agent, plan]
}

async function runAgent (ctx: AgentContext<z.infer<typeof agentInput>>, model: Model, config: LlmConfig): Promise<unknown> {
  const budget = { used: 0 }
  const { tools, byName } = meshTools(ctx.capabilities(), ctx.input.tools)
  const messages = toMessages(ctx.input, 'You are an agent on a mesh of peers. Use the tools when they help; each runs on whichever peer offers it. Answer plainly when done.')
  const maxSteps = ctx.input.maxSteps ?? config.maxSteps ?? 8
  let toolCalls = 0
  const approvalNames = new Set<string>()
  for (let step = 0; step < maxSteps; step++) {
    const reply = await model.call(ctx, `agent:${step}`, { messages, model: ctx.input.model, tools }, budget)
    if (reply.toolCalls.length === 0) return { text: reply.content, steps: step + 1, toolCalls, tokens: budget.used }
    messages.push({ role: 'assistant', content: reply.content === '' ? null : reply.content, tool_calls: reply.toolCalls.map(c => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } })) })
    // one wait at a time: a task waits for one signal, and each approval resumes it once
    const refused = new Map<string, string>()
    for (const call of reply.toolCalls) {
      const tool = byName.get(call.name)
      if (tool === undefined || !(tool.needsApproval || (ctx.input.needsApproval ?? []).includes(tool.capability))) continue
      // the call is journaled first, so whoever approves sees what was asked
      // `approve:<call id>`, unless an earlier step waited on that name already (some providers
      // number calls per reply, so ids repeat): then the step qualifies it. Journaled, so a
      // resumed run waits on the very name it chose.
      const plain = `${APPROVAL_PREFIX}${call.id}`
      const asked = await ctx.step(`approval:${step}:${call.id}`, async () => ({ tool: tool.capability, arguments: call.arguments, signal: approvalNames.has(plain) ? `${APPROVAL_PREFIX}${step}.${call.id}` : plain }))
      approvalNames.add(asked.signal)
      const decision = await ctx.waitFor(asked.signal, { schema: approvalSchema, ...(ctx.input.approvalTimeoutMs === undefined ? {} : { timeoutMs: ctx.input.approvalTimeoutMs }) })
      if (!decision.approved) refused.set(call.id, `refused by a person${decision.reason === undefined ? '' : `: ${decision.reason}`}`)
    }
    const answers = await Promise.all(reply.toolCalls.map(async call => {
      const tool = byName.get(call.name)
      let content: string
      const refusal = refused.get(call.id)
      if (refusal !== undefined) {
        content = JSON.stringify({ error: refusal })
      } else if (tool === undefined) {
        content = JSON.stringify({ error: `no tool ${call.name}` })
      } else {
        let args: unknown
        try {
          args = JSON.parse(call.arguments === '' ? '{}' : call.arguments)
        } catch {
          return { role: 'tool' as const, tool_call_id: call.id, content: JSON.stringify({ error: 'arguments are not JSON' }) }
        }
        toolCalls++
        // the tool call is a subtask on the mesh, and a durable step of this task
        const result = await ctx.step(`tool:${step}:${call.id}`, async () => {
          try {
            return { ok: await ctx.submit(tool.capability, toolInput(args, tool.wrapped)) }
          } catch (err: any) {
            // an aborted run's failure is no tool's answer: journaled, it would be replayed to the next holder
            if (ctx.signal.aborted) throw err
            return { error: String(err.message) }
          }
        })
        content = JSON.stringify(result)
      }
      return { role: 'tool' as const, tool_call_id: call.id, content }
    }))
    messages.push(...answers)
  }
  throw new UnrecoverableTaskError(new BudgetExceededError(`no final answer within ${maxSteps} steps`).message)
}
