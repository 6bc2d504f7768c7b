import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PACKAGE_ROOT } from '../../node/package-root.js'
import { runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { waitFor } from '../../sim/wait.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'

/** The commands, run as a user runs them, against a real daemon. */
describe('agentmesh memory, signal and approve', () => {
  const tmp = useTmpDirs()
  const running: DaemonProcess[] = []
  afterEach(() => { for (const d of running.splice(0)) d.proc.kill('SIGKILL') })

  it('memory put, search and rm; signal wakes a waiting task; approve explains a task that waits for no approval', async () => {
    const dir = await tmp()
    const d = await startDaemonProcess(['--data', join(dir, 'a'), '--api', '127.0.0.1:0', '--agents-module', join(PACKAGE_ROOT, 'test', 'fixtures', 'waiting-agent.mjs')], { timeoutMs: 60_000 })
    running.push(d)
    const cli = async (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> => runCli([...args, '--api', d.api], { timeoutMs: 30_000 })

    expect((await cli('memory', 'put', 'notes', 'a', '--vector', '[1,0,0]', '--metadata', '{"topic":"x"}')).stdout).toMatch(/stored a in notes on 1 replicas/)
    expect((await cli('memory', 'put', 'notes', 'b', '--vector', '[0,1,0]')).code).toBe(0)
    const found = JSON.parse((await cli('memory', 'search', 'notes', '--vector', '[0.9,0.1,0]', '-k', '2', '--json')).stdout)
    // a text and a vector, or neither: a usage error (exit 2) before any request
    for (const args of [['notes', 'cats', '--vector', '[1,0,0]'], ['notes']]) {
      const refused = await cli('memory', 'search', ...args)
      expect({ code: refused.code, stderr: refused.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(/search by a text or by --vector/) })
    }
    expect(found.hits.map((h: { id: string }) => h.id)).toEqual(['a', 'b'])
    expect(found.coverage.complete).toBe(true)
    const filtered = JSON.parse((await cli('memory', 'search', 'notes', '--vector', '[0.9,0.1,0]', '--filter', '{"topic":"x"}', '--json')).stdout)
    expect(filtered.hits.map((h: { id: string }) => h.id)).toEqual(['a'])
    const removed = await cli('memory', 'rm', 'notes', 'a')
    expect({ code: removed.code, stdout: removed.stdout.trim() }).toEqual({ code: 0, stdout: 'deleted a from notes' })
    // gone already: said so, and a non-zero exit, as rm of a missing file
    const again = await cli('memory', 'rm', 'notes', 'a')
    expect({ code: again.code, stderr: again.stderr.trim() }).toEqual({ code: 1, stderr: 'agentmesh: nothing deleted: notes holds no record a older than this delete' })
    const never = await cli('memory', 'rm', 'notes', 'never', '--json')
    expect({ code: never.code, answer: JSON.parse(never.stdout), stderr: never.stderr.trim() }).toEqual({ code: 1, answer: { collection: 'notes', id: 'never', deleted: false }, stderr: 'agentmesh: nothing deleted: notes holds no record never older than this delete' })
    // the client options before the subcommand too, as dlq takes them
    const before = await runCli(['memory', '--api', d.api, '--json', 'search', 'notes', '--vector', '[1,0,0]'], { timeoutMs: 30_000 })
    expect({ code: before.code, stderr: before.stderr }).toEqual({ code: 0, stderr: '' })
    const left = JSON.parse(before.stdout)
    expect(left.hits.map((h: { id: string }) => h.id)).toEqual(['b'])
    const bad = await cli('memory', 'put', 'notes', 'c', '--vector', 'nope')
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/--vector is not JSON/)
    const infinite = await cli('memory', 'put', 'notes', 'c', '--vector', '[1e400,0,0]')
    expect({ code: infinite.code, stderr: infinite.stderr }).toMatchObject({ code: 1, stderr: expect.stringMatching(/--vector holds a number too large to be finite/) })

    const { id } = JSON.parse((await cli('submit', '--capability', 'waiter', '--input', 'null', '--json')).stdout)
    await waitFor(async () => (await cli('tasks', '--state', 'waiting', '--json')).stdout.includes(id), { what: 'the task to wait', timeoutMs: 20_000 })
    const noApproval = await cli('approve', id.slice(0, 8))
    expect(noApproval.code).not.toBe(0)
    expect(noApproval.stderr).toMatch(/waits for no approval now \(it waits for "go"\)/)
    // a reason is for a refusal: with an approval it went nowhere, unsaid
    const approvedWithReason = await cli('approve', id.slice(0, 8), '--reason', 'looks fine')
    expect({ code: approvedWithReason.code, stderr: approvedWithReason.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(/--reason goes with --reject/) })
    const wrong = await cli('signal', id, 'stop')
    expect(wrong.stderr).toMatch(/waits for "go", not "stop"/)
    expect((await cli('signal', id.slice(0, 8), 'go', '--data', '{"x":1}')).stdout).toMatch(/signal go delivered/)
    await waitFor(async () => JSON.parse((await cli('task', id, '--json')).stdout).state === 'completed', { what: 'the task to complete', timeoutMs: 20_000 })
    const task = JSON.parse((await cli('task', id, '--json')).stdout)
    expect(task.result).toEqual({ got: { x: 1 } })
    const late = await cli('signal', id, 'go')
    expect(late.code).not.toBe(0)
    expect(late.stderr).toMatch(/the task is completed/)
  }, 120_000)
})
