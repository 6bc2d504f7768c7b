import { createHash } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { z } from 'zod'
import { UnrecoverableTaskError } from '../runtime/agent.js'
import type { Agent } from '../runtime/agent.js'

export const echoAgent: Agent = {
  name: 'echo',
  capabilities: [{ name: 'echo', description: 'returns its input unchanged' }],
  // a no-op holds its slot only for its claim's round trips: 8 slots made a busy node store and
  // offer most of what it was sent (two requests to each member where running it at once is one)
  concurrency: 64,
  pure: true,
  run: async ctx => ctx.input
}

export const sleepAgent: Agent<{ ms: number }> = {
  name: 'sleep',
  capabilities: [{ name: 'sleep', description: 'waits ms milliseconds, stops early when aborted' }],
  concurrency: 8,
  inputSchema: z.object({ ms: z.number().int().min(0).max(3_600_000) }),
  run: async ctx => {
    await delay(ctx.input.ms, undefined, { signal: ctx.signal })
    return { slept: ctx.input.ms }
  }
}

export const failAgent: Agent<{ times: number, unrecoverable?: boolean, message?: string }> = {
  name: 'fail',
  capabilities: [{ name: 'fail', description: 'fails its first `times` attempts, then returns the attempt number (for retry tests)' }],
  concurrency: 4,
  inputSchema: z.object({ times: z.number().int().min(0), unrecoverable: z.boolean().optional(), message: z.string().optional() }),
  run: async ctx => {
    if (ctx.input.unrecoverable === true) throw new UnrecoverableTaskError(ctx.input.message ?? 'unrecoverable failure, as asked')
    if (ctx.attempt <= ctx.input.times) throw new Error(ctx.input.message ?? `failing attempt ${ctx.attempt} of ${ctx.input.times}, as asked`)
    return { attempt: ctx.attempt }
  }
}

/** Text inputs may be a bare string or `{text}`. */
export const textInput = z.union([z.string(), z.object({ text: z.string() })]).transform(v => typeof v === 'string' ? v : v.text)

export function words (text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu) ?? []
}

export function countWords (text: string): Record<string, number> {
  // a Map: on a plain object, the words "constructor" or "toString" would read Object's own methods
  const counts = new Map<string, number>()
  for (const w of words(text)) counts.set(w, (counts.get(w) ?? 0) + 1)
  return Object.fromEntries(counts)
}

export const wordcountAgent: Agent<string> = {
  name: 'text.wordcount',
  capabilities: [{ name: 'text.wordcount', description: 'word frequencies of a text: {counts, words}' }],
  concurrency: 4,
  pure: true,
  inputSchema: textInput,
  run: async ctx => {
    const counts = countWords(ctx.input)
    return { counts, words: Object.values(counts).reduce((a, b) => a + b, 0) }
  }
}

export const textStatsAgent: Agent<string> = {
  name: 'text.stats',
  capabilities: [{ name: 'text.stats', description: 'characters, words, lines, sentences, unique words and average word length of a text' }],
  concurrency: 4,
  pure: true,
  inputSchema: textInput,
  run: async ctx => {
    const text = ctx.input
    const all = words(text)
    return {
      characters: text.length,
      words: all.length,
      lines: text === '' ? 0 : text.split(/\r?\n/).length,
      sentences: (text.match(/[.!?]+(?=\s|$)/g) ?? []).length,
      uniqueWords: new Set(all).size,
      averageWordLength: all.length === 0 ? 0 : Math.round(all.reduce((n, w) => n + w.length, 0) / all.length * 100) / 100
    }
  }
}

export const sha256Agent: Agent<string> = {
  name: 'hash.sha256',
  capabilities: [{ name: 'hash.sha256', description: 'SHA-256 of a text (UTF-8), hex' }],
  concurrency: 4,
  pure: true,
  inputSchema: textInput,
  run: async ctx => ({ sha256: createHash('sha256').update(ctx.input, 'utf8').digest('hex') })
}
