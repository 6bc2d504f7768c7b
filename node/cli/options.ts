import type { Command } from 'commander'

/** The options every client command takes. */
export function clientOptions (cmd: Command): Command {
  return cmd
    .option('--api <url>', 'control API of a node (default: from --data, else 127.0.0.1:7070)')
    .option('--data <dir>', 'data dir of a running node (reads its node.json)')
    .option('--json', 'print the raw JSON answer')
}
