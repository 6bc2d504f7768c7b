import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { countWords } from '../node/agents/basic.js'
import { PACKAGE_ROOT } from '../node/package-root.js'
import { canonicalJson } from '../protocols/task/index.js'
import type { Rng } from './rng.js'
import type { WORKLOADS } from './scenario.js'

export type WorkloadName = typeof WORKLOADS[number]

export interface TaskSpec {
  capability: string
  input: unknown
  /** what a correct result looks like: checked at the end */
  check: (result: unknown) => boolean
}

export const CORPUS: string = readFileSync(join(PACKAGE_ROOT, 'sim', 'data', 'corpus.txt'), 'utf8')
const CORPUS_WORDS = CORPUS.split(/\s+/)

// key order does not matter: the merged counts come back sorted by frequency
const same = (a: unknown, b: unknown): boolean => a !== undefined && canonicalJson(a) === canonicalJson(b)

function echo (i: number): TaskSpec {
  const input = { n: i }
  return { capability: 'echo', input, check: r => same(r, input) }
}

function sleep (rng: Rng): TaskSpec {
  const ms = rng.int(50, 400)
  return { capability: 'sleep', input: { ms }, check: r => same(r, { slept: ms }) }
}

function mapreduce (rng: Rng): TaskSpec {
  const start = rng.int(0, Math.floor(CORPUS_WORDS.length / 2))
  const text = CORPUS_WORDS.slice(start, start + rng.int(150, CORPUS_WORDS.length - start + 1)).join(' ')
  const expected = countWords(text)
  return { capability: 'mapreduce', input: { text, chunks: 4 }, check: r => same((r as { counts?: unknown })?.counts, expected) }
}

/** The task list of a run: a function of the workload, the count and the seed alone. */
export function makeWorkload (name: WorkloadName, count: number, rng: Rng): TaskSpec[] {
  return Array.from({ length: count }, (_, i) => {
    switch (name) {
      case 'echo': return echo(i)
      case 'sleep': return sleep(rng)
      case 'mapreduce': return mapreduce(rng)
      case 'mixed': {
        const roll = rng.next()
        return roll < 0.5 ? echo(i) : roll < 0.8 ? sleep(rng) : mapreduce(rng)
      }
    }
  })
}
