import { z } from 'zod'
import { InvalidConfigError } from '../errors.js'

/** An MCP server's name: part of each capability it offers (`mcp.NAME.TOOL`), so no dots. */
export const MCP_SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/

const stdioServer = z.object({
  command: z.string().min(1),
  args: z.array(z.string()).optional(),
  /** added to the few variables the MCP SDK passes on (HOME, PATH, ...) */
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().min(1).optional()
}).strict()

const httpServer = z.object({
  url: z.string().regex(/^https?:\/\/\S+$/, 'an MCP server URL is http:// or https://'),
  headers: z.record(z.string(), z.string()).optional()
}).strict()

export type StdioMcpServer = z.infer<typeof stdioServer>
export type HttpMcpServer = z.infer<typeof httpServer>
export type McpServerConfig = StdioMcpServer | HttpMcpServer

/**
 * One MCP server of the config file: a command line or URL as text (as `--mcp-server` takes it),
 * `{command, args, env, cwd}` (as desktop clients write it) or `{url, headers}`.
 */
export const mcpServerSchema = z.union([
  z.string().min(1).transform((text, ctx): McpServerConfig => {
    try {
      return serverFromText(text)
    } catch (err: any) {
      ctx.addIssue({ code: 'custom', message: err.message })
      return z.NEVER
    }
  }),
  stdioServer,
  httpServer
])

/** `mcpServers` of the daemon config: name -> server. */
export const mcpServersSchema = z.record(z.string().regex(MCP_SERVER_NAME, 'MCP server name: letters, digits, _ - (up to 32), no dots'), mcpServerSchema)

/** `http(s)://...` is a Streamable HTTP server; anything else a command line to start. */
export function serverFromText (text: string): McpServerConfig {
  if (/^https?:\/\//i.test(text.trim())) return { url: text.trim() }
  const [command, ...args] = splitCommandLine(text)
  if (command === undefined) throw new InvalidConfigError('an MCP server needs a command or a URL')
  return { command, args }
}

/** `--mcp-server NAME=COMMAND` or `NAME=URL`, as [name, server]. */
export function parseMcpServerFlag (value: string): [string, McpServerConfig] {
  const i = value.indexOf('=')
  const name = i < 0 ? '' : value.slice(0, i)
  if (!MCP_SERVER_NAME.test(name)) throw new InvalidConfigError(`--mcp-server takes NAME=COMMAND or NAME=URL (NAME: letters, digits, _ -), got "${value}"`)
  try {
    return [name, serverFromText(value.slice(i + 1))]
  } catch (err: any) {
    throw new InvalidConfigError(`--mcp-server ${name}: ${err.message}`)
  }
}

/** Every `--mcp-server` flag as the config's `mcpServers`; a name given twice is an error. */
export function mcpServersFromFlags (values: string[]): Record<string, McpServerConfig> {
  const out: Record<string, McpServerConfig> = {}
  for (const value of values) {
    const [name, server] = parseMcpServerFlag(value)
    if (name in out) throw new InvalidConfigError(`--mcp-server ${name} is given twice`)
    out[name] = server
  }
  return out
}

/**
 * Splits a command line as a POSIX shell would, without running one: spaces separate words,
 * '...' keeps everything, "..." keeps all but \" and \\, and a backslash outside quotes keeps the
 * next character. No variables, globs or pipes: the words go to spawn as they are.
 */
export function splitCommandLine (line: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let quote: '"' | "'" | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (quote === "'") {
      if (c === "'") quote = undefined
      else word += c
    } else if (quote === '"') {
      if (c === '"') quote = undefined
      else if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) word += line[++i]
      else word += c
    } else if (c === "'" || c === '"') {
      quote = c
      inWord = true
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += c
      inWord = true
    }
  }
  if (quote !== undefined) throw new InvalidConfigError(`unclosed ${quote} in command line: ${line}`)
  if (inWord) words.push(word)
  return words
}

/** How a server is shown in messages: its URL, or its command line. */
export function describeServer (server: McpServerConfig): string {
  return 'url' in server ? server.url : [server.command, ...(server.args ?? [])].join(' ')
}
