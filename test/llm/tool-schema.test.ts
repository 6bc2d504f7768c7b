import { describe, expect, it } from 'vitest'
import { BUILTIN_AGENTS } from '../../node/agents/index.js'
import { llmAgents, meshTools } from '../../node/llm/agents.js'
import { inputProblem, isObjectSchema, toolInput, toolSchema } from '../../protocols/tools/tool-schema.js'
import { AgentRuntime } from '../../node/runtime/runtime.js'

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

  it('says what each form of a value that may take several wanted, where zod said only "Invalid input"', () => {
    const textOrObject = { anyOf: [{ type: 'string' }, { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }] }
    expect(inputProblem(textOrObject, 12)).toBe('(root): fits none of the 2 forms it may take (Invalid input: expected string, received number; or Invalid input: expected object, received number)')
    expect(inputProblem({ type: 'object', properties: { a: textOrObject }, required: ['a'] }, { a: { text: 3 } })).toMatch(/^a: fits none of the 2 forms it may take \(.*; or text: Invalid input: expected string, received number\)$/)
    expect(inputProblem(textOrObject, 'fine')).toBeUndefined()
  })
})
