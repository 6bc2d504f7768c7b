import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { meshTools, toolResult } from '../../protocols/mcp/index.js'
import { BUILTIN_AGENTS } from '../../node/agents/index.js'
import { resolveDaemonConfig } from '../../node/daemon/config.js'
import { llmAgents } from '../../node/llm/agents.js'
import { isObjectSchema, toolInput } from '../../protocols/tools/tool-schema.js'
import { capabilityName } from '../../node/mcp/clients.js'
import { parseMcpServerFlag, splitCommandLine } from '../../node/mcp/config.js'
import { AgentRuntime } from '../../node/runtime/runtime.js'
import { useTmpDirs } from '../helpers/tmp.js'

describe('MCP tools from capabilities', () => {
  it('serves every built-in capability (LLM ones included) with an object input schema', () => {
    const runtime = new AgentRuntime([...BUILTIN_AGENTS, ...llmAgents({ model: 'm', apiKey: 'unused' })])
    const tools = meshTools(runtime.capabilities())
    expect(tools.map(t => t.tool.name)).toEqual(expect.arrayContaining(['echo', 'text.wordcount', 'hash.sha256', 'mapreduce', 'llm.chat', 'agent', 'plan']))
    for (const { tool } of tools) expect(isObjectSchema(tool.inputSchema as Record<string, unknown>), tool.name).toBe(true)
  })

  it('wraps a non-object input and unwraps the call\'s arguments; keeps one tool per name, the one that describes it', () => {
    const tools = meshTools([
      { name: 'b.text' },
      { name: 'b.text', description: 'a text', inputSchema: { anyOf: [{ type: 'string' }, { type: 'object', properties: { text: { type: 'string' } } }] } },
      { name: 'a.obj', inputSchema: { type: 'object', properties: { n: { type: 'number' } } } }
    ])
    expect(tools.map(t => t.tool.name)).toEqual(['a.obj', 'b.text'])
    const [obj, text] = tools
    expect(obj?.wrapped).toBe(false)
    expect(text?.wrapped).toBe(true)
    expect(text?.tool.description).toBe('a text')
    expect(text?.tool.inputSchema).toMatchObject({ type: 'object', required: ['input'] })
    expect(toolInput({ input: 'hello' }, true)).toBe('hello')
    expect(toolInput({ n: 1 }, false)).toEqual({ n: 1 })
  })

  it('a result is text, with structured content only for an object; anything but completed is an error', () => {
    expect(toolResult({ id: 'x', state: 'completed', done: true, result: 'plain' })).toMatchObject({ content: [{ type: 'text', text: 'plain' }] })
    expect(toolResult({ id: 'x', state: 'completed', done: true, result: [1, 2] }).structuredContent).toBeUndefined()
    expect(toolResult({ id: 'x', state: 'completed', done: true, result: { a: 1 } }).structuredContent).toEqual({ a: 1 })
    expect(toolResult({ id: 'x', state: 'canceled', done: true, error: 'by a user' })).toMatchObject({ isError: true, content: [{ text: 'task x canceled: by a user' }] })
  })
})

describe('MCP servers in the daemon config', () => {
  const tmp = useTmpDirs()

  it.each([
    ['a b  c', ['a', 'b', 'c']],
    ['"/path with/node" \'x y\' z', ['/path with/node', 'x y', 'z']],
    ['say "a \\"quoted\\" word" it\\ s', ['say', 'a "quoted" word', 'it s']],
    ['empty "" \'\'', ['empty', '', '']],
    ['  ', []]
  ])('splits %j like a shell', (line, words) => {
    expect(splitCommandLine(line)).toEqual(words)
  })

  it('takes NAME=COMMAND and NAME=URL, and names what is wrong otherwise', () => {
    expect(parseMcpServerFlag('fs=npx -y server "/my dir"')).toEqual(['fs', { command: 'npx', args: ['-y', 'server', '/my dir'] }])
    expect(parseMcpServerFlag('web=https://example.org/mcp')).toEqual(['web', { url: 'https://example.org/mcp' }])
    for (const bad of ['noequals', '=cmd', 'a.b=cmd', 'x=', 'x=\'open']) {
      expect(() => parseMcpServerFlag(bad), bad).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
    }
  })

  it('merges the file\'s mcpServers with the flags\' by name, flags winning', async () => {
    const dir = await tmp()
    const file = join(dir, 'config.json')
    await writeFile(file, JSON.stringify({ data: dir, mcpServers: { a: 'cmd-a --flag', b: { command: 'cmd-b', env: { K: 'v' } }, c: { url: 'http://127.0.0.1:1/mcp', headers: { authorization: 'Bearer t' } } } }))
    const config = await resolveDaemonConfig({ config: file, mcpServer: ['a=other-a', 'd=http://127.0.0.1:2/mcp'] }, {})
    expect(config.mcpServers).toEqual({
      a: { command: 'other-a', args: [] },
      b: { command: 'cmd-b', env: { K: 'v' } },
      c: { url: 'http://127.0.0.1:1/mcp', headers: { authorization: 'Bearer t' } },
      d: { url: 'http://127.0.0.1:2/mcp' }
    })
    await writeFile(file, JSON.stringify({ mcpServers: { 'bad.name': 'x' } }))
    await expect(resolveDaemonConfig({ config: file }, {})).rejects.toMatchObject({ name: 'InvalidConfigError' })
    await writeFile(file, JSON.stringify({ mcpServers: { a: { url: 'ftp://x' } } }))
    await expect(resolveDaemonConfig({ config: file }, {})).rejects.toMatchObject({ name: 'InvalidConfigError' })
    await expect(resolveDaemonConfig({ mcpServer: ['a=x', 'a=y'] }, {})).rejects.toThrow(/given twice/)
  })

  it('makes capability names within the charset and 64 characters, never two alike', () => {
    expect(capabilityName('everything', 'get-sum')).toBe('mcp.everything.get-sum')
    expect(capabilityName('s', 'has space/slash')).toBe('mcp.s.has_space_slash')
    const long = capabilityName('server', 'x'.repeat(100))
    expect(long).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
    const taken = new Set(['mcp.s.a_b'])
    const second = capabilityName('s', 'a b', taken)
    expect(second).not.toBe('mcp.s.a_b')
    expect(second).toMatch(/^mcp\.s\.a_b-[0-9a-f]{8}$/)
  })
})
