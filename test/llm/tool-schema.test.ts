import { describe, expect, it } from 'vitest'
import { BUILTIN_AGENTS } from '../../node/agents/index.js'
import { llmAgents, meshTools } from '../../node/llm/agents.js'
import { inputProblem, isObjectSchema, toolInput, toolSchema } from '../../protocols/tools/tool-schema.js'
import { AgentRuntime } from '../../node/runtime/runtime.js'
import { memorySearchAgent } from '../../node/agents/memory.js'
import { inputRefusal } from '../../node/api/input-check.js'

/** OpenAI's rule for function parameters: a JSON Schema of type object, with no union at the top. */
function acceptedByOpenAI (parameters: Record<string, unknown>): boolean {
  return parameters.type === 'object' && parameters.anyOf === undefined && parameters.oneOf === undefined && parameters.allOf === undefined && parameters.$schema === undefined
}

describe('tool schemas that real models accept', () => {
  const runtime = new AgentRuntime([...BUILTIN_AGENTS, ...llmAgents({ model: 'm', apiKey: 'k' })])
  const capabilities = runtime.capabilities()

  it('gives every built-in capability an object schema as its tool parameters', () => {
    const { tools, byName } = meshTools(capabilities)
    // the planners are left out on purpose; every other capability is a tool
    expect(tools.length).toBe(capabilities.filter(c => !['agent', 'plan'].includes(c.name)).length)
    for (const tool of tools) {
      if (tool.type !== 'function') throw new Error('not a function tool')
      expect(acceptedByOpenAI(tool.function.parameters as Record<string, unknown>), `${tool.function.name}: ${JSON.stringify(tool.function.parameters)}`).toBe(true)
    }
    // "a string or {text}" is wrapped, an object input is not
    const wordcount = capabilities.find(c => c.name === 'text.wordcount')
    expect(wordcount?.inputSchema).toMatchObject({ anyOf: [{ type: 'string' }, { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }] })
    expect(isObjectSchema(wordcount?.inputSchema)).toBe(false)
    expect(byName.get('text__wordcount')).toEqual({ capability: 'text.wordcount', wrapped: true, needsApproval: false })
    expect(byName.get('sleep')).toEqual({ capability: 'sleep', wrapped: false, needsApproval: false })
  })

  it('publishes the input schema of every built-in agent that checks its input, transforms and all', () => {
    const checked = BUILTIN_AGENTS.filter(a => a.inputSchema !== undefined).flatMap(a => a.capabilities.map(c => typeof c === 'string' ? c : c.name))
    expect(checked).toContain('text.wordcount')
    for (const name of checked) {
      // a schema zod could not write comes out as {$schema} alone: each must say what it takes
      const schema = capabilities.find(c => c.name === name)?.inputSchema
      expect(schema?.type !== undefined || schema?.anyOf !== undefined, `${name}: ${JSON.stringify(schema)}`).toBe(true)
    }
  })

  it('unwraps the arguments of a wrapped tool, and takes a bare value from a model that ignored the wrapper', () => {
    const { parameters, wrapped } = toolSchema({ anyOf: [{ type: 'string' }, { type: 'object', properties: { text: { type: 'string' } } }] })
    expect(wrapped).toBe(true)
    expect(parameters).toMatchObject({ type: 'object', required: ['input'], properties: { input: { anyOf: expect.any(Array) } } })
    expect(toolInput({ input: 'two words' }, true)).toBe('two words')
    expect(toolInput({ input: { text: 'x' } }, true)).toEqual({ text: 'x' })
    expect(toolInput({ text: 'x' }, true)).toEqual({ text: 'x' })
    expect(toolInput({ ms: 5 }, false)).toEqual({ ms: 5 })
    // no schema at all: any JSON, still an object at the top
    expect(toolSchema(undefined)).toMatchObject({ wrapped: true, parameters: { type: 'object', properties: { input: {} } } })
  })

  it('publishes the keys of which an input must give one (llm.chat and agent: prompt or messages; memory.search: text or vector), so a door refuses an input with neither before a task is made', () => {
    const schemaOf = (name: string): Record<string, unknown> | undefined => capabilities.find(c => c.name === name)?.inputSchema
    for (const name of ['llm.chat', 'llm.chat.m', 'agent']) {
      const schema = schemaOf(name)
      expect(inputProblem(schema, {}), name).toBe('(root): give prompt or messages')
      expect(inputProblem(schema, { nothing: 1, maxSteps: 2 }), name).toBe('(root): give prompt or messages')
      expect(inputProblem(schema, { prompt: 'hi' }), name).toBeUndefined()
      expect(inputProblem(schema, { messages: [{ role: 'user', content: 'hi' }] }), name).toBeUndefined()
      // the rest of the schema still holds
      expect(inputProblem(schema, { prompt: 5 }), name).toMatch(/^prompt: /)
      // still an object to the tool APIs, with no union at the top for a model's provider
      expect(isObjectSchema(schema), name).toBe(true)
      expect(toolSchema(schema).wrapped, name).toBe(false)
      expect(acceptedByOpenAI(toolSchema(schema).parameters), name).toBe(true)
    }
    const search = (memorySearchAgent.capabilities[0] as { inputSchema?: Record<string, unknown> }).inputSchema
    expect(inputProblem(search, { collection: 'docs' })).toBe('(root): give text or vector')
    expect(inputProblem(search, { collection: 'docs', text: 'what' })).toBeUndefined()
    // what the API, MCP and A2A doors ask before a submit, over the live peers' schemas
    const peer = { capabilities: capabilities.filter(c => c.name === 'agent') } as never
    expect(inputRefusal([peer], 'agent', {})).toBe('(root): give prompt or messages')
    expect(inputRefusal([peer], 'agent', { prompt: 'go' })).toBeUndefined()
  })

  it('says what each form of a value that may take several wanted, where zod said only "Invalid input"', () => {
    const textOrObject = { anyOf: [{ type: 'string' }, { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }] }
    expect(inputProblem(textOrObject, 12)).toBe('(root): fits none of the 2 forms it may take (Invalid input: expected string, received number; or Invalid input: expected object, received number)')
    expect(inputProblem({ type: 'object', properties: { a: textOrObject }, required: ['a'] }, { a: { text: 3 } })).toMatch(/^a: fits none of the 2 forms it may take \(.*; or text: Invalid input: expected string, received number\)$/)
    expect(inputProblem(textOrObject, 'fine')).toBeUndefined()
  })
})
