import { Buffer } from 'node:buffer'
import { EmbeddingsUnavailableError } from './errors.js'
import type { Embed } from './memory-layer.js'

/** The capability a node with an embeddings model offers, and a node without one asks of it. */
export const EMBED_CAPABILITY = 'memory.embed'

/** Texts a memory.embed task carries: 8 vectors of the most dimensions stay well under a result's 1 MiB. */
export const TEXTS_PER_EMBED_TASK = 8
/** ... and the bytes of text it carries at most, well under a task input's 1 MiB */
const TEXT_BYTES_PER_EMBED_TASK = 256 * 1024

export interface EmbedTasks {
  submit: (req: { capability: string, input: unknown, requirePeer: boolean, deadlineMs: number }) => Promise<{ id: string }>
  waitFor: (id: string, waitMs: number) => Promise<{ record: { final?: { state: string, reason?: string } }, result?: { value: unknown } }>
  cancel: (id: string) => Promise<unknown>
}

/**
 * Texts embedded by a peer that has an embeddings model, through memory.embed tasks. A node run
 * without `--embeddings-model` took a text record or query and failed it three times on its own,
 * while a peer could have embedded it: every node offers memory.put and memory.search. What comes
 * back is checked by the memory layer as a local model's answer is.
 */
export function embedByPeers (tasks: () => EmbedTasks, waitMs: number): Embed {
  return async texts => {
    const vectors = await Promise.all(chunks(texts).map(async chunk => {
      let id: string
      try {
        ({ id } = await tasks().submit({ capability: EMBED_CAPABILITY, input: { texts: chunk }, requirePeer: true, deadlineMs: waitMs }))
      } catch (err: any) {
        if (err?.name === 'NoCapablePeerError') throw new EmbeddingsUnavailableError('no embeddings model on this node or on any live peer (--embeddings-model): give vectors, or configure one')
        // the node's own refusals keep their names (429 and 503 with Retry-After at the API)
        if (err?.name === 'OverloadedError' || err?.name === 'QuorumUnavailableError') throw err
        throw new EmbeddingsUnavailableError(`texts to embed could not be handed to a peer: ${String(err?.message ?? err)}`, { cause: err })
      }
      const view = await tasks().waitFor(id, waitMs)
      const value = view.result?.value as { vectors?: unknown } | undefined
      // a task not done in time is not left to die at its deadline in the dead-letter list
      if (view.record.final === undefined) await tasks().cancel(id).catch(() => {})
      if (view.record.final?.state !== 'completed' || !Array.isArray(value?.vectors)) {
        throw new EmbeddingsUnavailableError(`a peer's embedding (task ${id}) ${view.record.final === undefined ? `did not finish in ${waitMs} ms` : `ended ${view.record.final.state}: ${view.record.final.reason ?? ''}`}`)
      }
      return value.vectors as number[][]
    }))
    return vectors.flat()
  }
}

/** The texts in runs of at most TEXTS_PER_EMBED_TASK texts and TEXT_BYTES_PER_EMBED_TASK bytes (a longer text alone). */
function chunks (texts: string[]): string[][] {
  const out: string[][] = []
  let bytes = 0
  for (const text of texts) {
    const size = Buffer.byteLength(text)
    const last = out.at(-1)
    if (last === undefined || last.length >= TEXTS_PER_EMBED_TASK || bytes + size > TEXT_BYTES_PER_EMBED_TASK) {
      out.push([text])
      bytes = size
    } else {
      last.push(text)
      bytes += size
    }
  }
  return out
}
