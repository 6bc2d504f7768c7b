import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readBulkFile, readInput } from '../../node/cli/task-commands.js'
import { configFromFile } from '../../node/daemon/config.js'

describe('the CLI\'s --input', () => {
  it('reads JSON, a file as JSON or as text, and names what is wrong with a bad @FILE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-input-'))
    try {
      expect(await readInput('{"a":1}')).toEqual({ a: 1 })
      await writeFile(join(dir, 'in.json'), '[1,2]')
      await writeFile(join(dir, 'in.txt'), 'to be or not')
      expect(await readInput(`@${join(dir, 'in.json')}`)).toEqual([1, 2])
      expect(await readInput(`@${join(dir, 'in.txt')}`)).toBe('to be or not')
      await expect(readInput('[1e400]')).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/--input holds a number too large to be finite/) })
      await writeFile(join(dir, 'huge.json'), '{"n":1e400}')
      await expect(readInput(`@${join(dir, 'huge.json')}`)).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/huge\.json holds a number too large/) })
      await expect(readInput('@')).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/needs a file name after the @/) })
      await expect(readInput(`@${join(dir, 'none')}`)).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/none: ENOENT/) })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('reads a file that starts with a UTF-8 byte-order mark (an editor\'s) as the same file without it: @FILE, --bulk and --config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-input-'))
    const bom = '\ufeff'
    try {
      await writeFile(join(dir, 'in.json'), `${bom}[{"capability":"echo","input":"bom"}]`)
      await writeFile(join(dir, 'in.txt'), `${bom}plain text`)
      await writeFile(join(dir, 'lines.jsonl'), `${bom}{"capability":"echo","input":1}\n{"capability":"echo","input":2}\n`)
      await writeFile(join(dir, 'config.json'), `${bom}{"agents":["echo"]}`)
      expect(await readInput(`@${join(dir, 'in.json')}`)).toEqual([{ capability: 'echo', input: 'bom' }])
      expect(await readInput(`@${join(dir, 'in.txt')}`)).toBe('plain text')
      expect((await readBulkFile(join(dir, 'in.json'))).tasks).toEqual([{ capability: 'echo', input: 'bom' }])
      expect((await readBulkFile(join(dir, 'lines.jsonl'))).tasks).toEqual([{ capability: 'echo', input: 1 }, { capability: 'echo', input: 2 }])
      expect(await configFromFile(join(dir, 'config.json'))).toMatchObject({ agents: ['echo'] })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
