import { describe, expect, it } from 'vitest'
import { buildProgram } from '../../node/cli/main.js'
import type { Command } from 'commander'

function commands (cmd: Command, prefix = ''): Array<[string, Command]> {
  return cmd.commands.flatMap(sub => [[`${prefix}${sub.name()}`, sub] as [string, Command], ...commands(sub, `${prefix}${sub.name()} `)])
}

describe('the CLI\'s help', () => {
  it('ends every command\'s --help with examples of that command', () => {
    const all = commands(buildProgram())
    expect(all.map(([path]) => path)).toEqual(expect.arrayContaining(['node', 'submit', 'watch', 'trace', 'capabilities', 'dlq redrive']))
    for (const [path, cmd] of all) {
      let text = ''
      cmd.configureOutput({ writeOut: s => { text += s } })
      cmd.outputHelp()
      const examples = text.slice(text.lastIndexOf('Examples:'))
      expect(examples, `${path} --help`).toMatch(/^Examples:\n( {2}agentmesh .+\n?)+$/)
      expect(examples, `${path} --help shows its own command`).toContain(`agentmesh ${path.split(' ')[0] as string}`)
    }
  })
})
