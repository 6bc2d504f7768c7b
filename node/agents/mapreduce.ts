import { z } from 'zod'
import type { Agent } from '../runtime/agent.js'

const mapreduceOptions = z.object({
  text: z.string(),
  /** how many text.wordcount subtasks to split into */
  chunks: z.number().int().min(1).max(256).default(4),
  /** the most words reported; all when absent */
  top: z.number().int().min(1).optional()
})

/** `{text, chunks?, top?}`, or a plain string as the text agents take (so `--input @book.txt` works) */
const mapreduceInput = z.union([z.string().transform(text => ({ text, chunks: 4 })), mapreduceOptions])

/** Splits text into about n pieces of similar size, cutting only at whitespace. */
export function splitText (text: string, n: number): string[] {
  const target = Math.ceil(text.length / n)
  const out: string[] = []
  let start = 0
  while (start < text.length) {
    let end = Math.min(text.length, start + target)
    while (end < text.length && !/\s/.test(text[end] as string)) end++
    out.push(text.slice(start, end))
    start = end
  }
  return out.length === 0 ? [''] : out
}

/**
 * A planner: splits a text into chunks, puts a text.wordcount subtask per chunk on the mesh (any
 * capable peer runs each), and merges the counts.
 */
export const mapreduceAgent: Agent<z.infer<typeof mapreduceOptions>> = {
  name: 'mapreduce',
  capabilities: [{ name: 'mapreduce', description: 'word count of a large text, split into text.wordcount subtasks across the mesh' }],
  concurrency: 2,
  inputSchema: mapreduceInput,
  run: async ctx => {
    const pieces = splitText(ctx.input.text, ctx.input.chunks)
    ctx.progress({ phase: 'map', chunks: pieces.length })
    let done = 0
    const partials = await Promise.all(pieces.map(async piece => {
      // no idempotency key: the run's journal names each chunk's subtask to a later attempt, on any
      // node, and a chunk that failed is submitted again (a key would name the failed one)
      const result = await ctx.submit('text.wordcount', { text: piece }) as { counts: Record<string, number> }
      ctx.progress({ phase: 'map', done: ++done, of: pieces.length })
      return result.counts
    }))
    // a Map, as in countWords: "constructor" is a word, not Object's method
    const counts = new Map<string, number>()
    for (const partial of partials) for (const [w, n] of Object.entries(partial)) counts.set(w, (counts.get(w) ?? 0) + n)
    const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    const kept = ctx.input.top === undefined ? sorted : sorted.slice(0, ctx.input.top)
    return { counts: Object.fromEntries(kept), words: sorted.reduce((n, [, c]) => n + c, 0), uniqueWords: sorted.length, chunks: pieces.length }
  }
}
