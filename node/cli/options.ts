import { InvalidConfigError } from '../errors.js'
import type { Command } from 'commander'

/** A commander parser for a flag that takes a whole number (a count or milliseconds). */
export function wholeNumber (flag: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < 0) throw new InvalidConfigError(`${flag} takes a whole number, got "${value}"`)
    return n
  }
}

/** The options every client command takes. */
export function clientOptions (cmd: Command): Command {
  return cmd
    .option('--api <url>', 'control API of a node (default: from --data, else 127.0.0.1:7070)')
    .option('--data <dir>', 'data dir of a running node (reads its node.json)')
    .option('--json', 'print the raw JSON answer')
}
