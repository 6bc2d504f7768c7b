import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { countWords } from '../node/agents/basic.js'
import { PACKAGE_ROOT } from '../node/package-root.js'
import { canonicalJson } from '../protocols/task/index.js'
import { SIM_CAPABILITIES } from './agents.js'
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

type Stamped = Record<string, unknown> & { by?: unknown, nonce?: unknown }

/** The result is an object stamped by the sim agents (sim/agents.ts) with who ran it and a nonce. */
const stamped = (r: unknown): r is Stamped =>
  typeof r === 'object' && r !== null && typeof (r as Stamped).by === 'string' && typeof (r as Stamped).nonce === 'string'

function echo (i: number): TaskSpec {
  const input = { n: i }
  return { capability: SIM_CAPABILITIES.echo, input, check: r => stamped(r) && same(r.echo, input) }
}

function sleep (rng: Rng, range: SleepRange): TaskSpec {
  const ms = rng.int(range.min, range.max + 1)
  return { capability: SIM_CAPABILITIES.sleep, input: { ms }, check: r => stamped(r) && r.slept === ms }
}

function mapreduce (rng: Rng): TaskSpec {
  const start = rng.int(0, Math.floor(CORPUS_WORDS.length / 2))
  const text = CORPUS_WORDS.slice(start, start + rng.int(150, CORPUS_WORDS.length - start + 1)).join(' ')
  const expected = countWords(text)
  return { capability: SIM_CAPABILITIES.mapreduce, input: { text, chunks: 4 }, check: r => stamped(r) && same(r.counts, expected) }
}

/** How long a sleep task sleeps, ms, both ends included. */
export interface SleepRange {
  min: number
  max: number
}

/** @default { min: 50, max: 399 } */
export const DEFAULT_SLEEP_MS: SleepRange = { min: 50, max: 399 }

export interface WorkloadOptions {
  /** @default DEFAULT_SLEEP_MS */
  sleepMs?: SleepRange
}

/**
 * The task list of a run: a function of the workload, the count, the options and the seed alone.
 * Every result is stamped per execution (sim/agents.ts), so the checks read the answer part.
 */
export function makeWorkload (name: WorkloadName, count: number, rng: Rng, options: WorkloadOptions = {}): TaskSpec[] {
  const range = options.sleepMs ?? DEFAULT_SLEEP_MS
  return Array.from({ length: count }, (_, i) => {
    switch (name) {
      case 'echo': return echo(i)
      case 'sleep': return sleep(rng, range)
      case 'mapreduce': return mapreduce(rng)
      case 'mixed': {
        const roll = rng.next()
        return roll < 0.5 ? echo(i) : roll < 0.8 ? sleep(rng, range) : mapreduce(rng)
      }
    }
  })
}
