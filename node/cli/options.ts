import { parsePositiveWholeNumber, wholeNumberOf } from '../daemon/config.js'
import { MAX_TIMER_MS } from '../tasks/options.js'
import { InvalidConfigError } from '../errors.js'
import type { Command } from 'commander'

/**
 * `value` as parsed from JSON the user gave, refused when a number in it is too large to be finite:
 * JSON.parse reads 1e400 as Infinity, which would travel as null.
 */
export function finiteJson<T> (what: string, value: T): T {
  if (!finiteThroughout(value)) throw new InvalidConfigError(`${what} holds a number too large to be finite (as 1e400)`)
  return value
}

/** A flag holding JSON (undefined when not given), or a clear error naming it. */
export function jsonFlag (name: string, value: string | undefined): any {
  if (value === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch (err: any) {
    throw new InvalidConfigError(`--${name} is not JSON: ${err.message}`)
  }
  return finiteJson(`--${name}`, parsed)
}

function finiteThroughout (value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value)
  if (value === null || typeof value !== 'object') return true
  return Object.values(value).every(finiteThroughout)
}

/** For a repeatable flag: each use adds one value. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

/** A commander parser for a flag that takes a whole number (a count or milliseconds): digits only, no 1e4, no 0x10. */
export function wholeNumber (flag: string) {
  return (value: string): number => {
    const n = wholeNumberOf(value)
    if (n === undefined) throw new InvalidConfigError(`${flag} takes a whole number, 0 or more, got "${value}"`)
    return n
  }
}

/** A commander parser for a flag that takes a positive whole number (digits only: no 1e4, no 0x10). */
export function positiveWholeNumber (flag: string) {
  return (value: string): number => parsePositiveWholeNumber(flag, value)
}

/** A commander parser for a flag that takes milliseconds for a timer: a positive whole number, at most MAX_TIMER_MS (a longer wait fires at once). */
export function timerMsFlag (flag: string, max = MAX_TIMER_MS, what = 'the longest a timer can wait') {
  return (value: string): number => {
    const n = parsePositiveWholeNumber(flag, value)
    if (n > max) throw new InvalidConfigError(`${flag} is at most ${max} (${what}), got "${value}"`)
    return n
  }
}

/**
 * The options every client command takes. A command whose own `--data` means something else
 * (`agentmesh signal ID NAME --data JSON`, as the issue names it) takes the node's data dir as
 * `--node-data` instead.
 */
export function clientOptions (cmd: Command, dataFlag: '--data' | '--node-data' = '--data'): Command {
  return cmd
    .option('--api <url>', `control API of a node (default: from ${dataFlag}, else 127.0.0.1:7070)`)
    .option(`${dataFlag} <dir>`, 'data dir of a running node (reads its node.json)')
    .option('--api-token-file <file>', 'the API\'s bearer token (default: AGENTMESH_API_TOKEN)')
    .option('--json', 'print the raw JSON answer')
}
