import { describe, expect, it } from 'vitest'
import { CAPABILITY } from '../../protocols/task/schema.js'
import { StreamedText, chatCapability, chatTaskInput, chatCompletionRequestSchema, liveModels } from '../../protocols/openai/index.js'

describe('OpenAI gateway pieces', () => {
  it('maps any model name to a valid capability, readable when it can be, never two models to one', () => {
    expect(chatCapability('gpt-4o-mini')).toBe('llm.chat.gpt-4o-mini')
    const odd = ['org/model:7b', 'org_model_7b', 'Qwen/Qwen2.5-Coder-32B-Instruct-GGUF:Q4_K_M', 'x'.repeat(200), 'a b', 'é']
    const names = odd.map(chatCapability)
    for (const name of names) expect(name).toMatch(CAPABILITY)
    expect(new Set(names).size).toBe(odd.length)
    expect(chatCapability('org/model:7b')).toBe(names[0])
  })

  it('lists each model once, by the capability that names it, and not the plain llm.chat', () => {
    const models = liveModels([
      { capabilities: [{ name: 'llm.chat' }, { name: 'llm.chat.b', model: 'b' }, { name: 'echo' }] },
      { capabilities: [{ name: 'llm.chat.b', model: 'b' }, { name: chatCapability('a/x'), model: 'a/x' }] }
    ])
    expect([...models]).toEqual([['a/x', chatCapability('a/x')], ['b', 'llm.chat.b']])
  })

  it('turns a request into llm.chat input, leaving out nulls', () => {
    const req = chatCompletionRequestSchema.parse({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, max_completion_tokens: 7, temperature: null, tool_choice: 'none', user: 'ignored' })
    expect(chatTaskInput(req)).toEqual({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 5, maxCompletionTokens: 7, toolChoice: 'none' })
    expect(chatCompletionRequestSchema.safeParse({ model: 'm', messages: [{ role: 'tool', content: 'x' }] }).success).toBe(false)
    expect(chatCompletionRequestSchema.safeParse({ model: 'm', messages: [{ role: 'user', content: 'x' }], n: 2 }).success).toBe(false)
    // what OpenAI itself refuses, or what would come back null, is a 400 naming the field
    const refused = (extra: object): string | undefined => chatCompletionRequestSchema.safeParse({ model: 'm', messages: [{ role: 'user', content: 'x' }], ...extra }).error?.issues.map(i => `${i.path.join('.')}: ${i.message}`).join('; ')
    expect(refused({ logprobs: true })).toMatch(/^logprobs: logprobs are not supported/)
    expect(refused({ top_logprobs: 3 })).toMatch(/^top_logprobs: logprobs are not supported/)
    expect(refused({ stream_options: { include_usage: true } })).toMatch(/^stream_options: .*only allowed when stream is true/)
    expect(refused({ logprobs: false, top_logprobs: 0, stream: true, stream_options: { include_usage: true } })).toBeUndefined()
  })

  it('streams a re-run only past what was sent, and stops at a departure or a lost token', () => {
    const t = new StreamedText()
    expect(['He', 'llo', ' wor'].map(x => t.token('c1', ['He', 'llo', ' wor'].indexOf(x), x))).toEqual(['He', 'llo', ' wor'])
    // a second claim re-traces "Hello wor" in other pieces, then goes on
    expect(['Hel', 'lo w', 'orld', '!'].map((x, i) => t.token('c2', i, x))).toEqual(['', '', 'ld', '!'])
    expect(t.sent).toBe('Hello world!')
    expect(t.claims).toBe(2)
    expect(t.rest('Hello world! Bye')).toBe(' Bye')
    // a third that says something else sends nothing, and the final answer decides
    expect(t.token('c3', 0, 'Goodbye')).toBe('')
    expect(t.token('c3', 1, ' world')).toBe('')
    expect(t.rest('Goodbye world')).toBeUndefined()
    // a lost token: that claim sends nothing more
    const u = new StreamedText()
    expect(u.token('c1', 0, 'a')).toBe('a')
    expect(u.token('c1', 2, 'c')).toBe('')
    expect(u.token('c1', 3, 'd')).toBe('')
    expect(u.rest('abcd')).toBe('bcd')
  })
})
