import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { failAgent } from '../../node/agents/basic.js'
import { LOG_STRING_MAX_CHARS, operatorLogOptions, watchNode } from '../../node/daemon/oplog.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import type { Testnet } from '../../sim/testnet.js'

describe('the operator log', () => {
  let net: Testnet
  const lines: any[] = []
  let unwatch: () => void

  beforeAll(async () => {
    net = await createTestnet(2, { perNode: i => ({ tasks: { ...FAST_TASKS, leaseMs: 2_000, claimLagLimitMs: 5_000, agents: i === 0 ? [failAgent] : [] } }) })
    await net.ready()
    const sink = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
    unwatch = watchNode(pino(operatorLogOptions('info'), sink), net.nodes[0]!)
  })
  afterAll(async () => {
    unwatch?.()
    await net?.stop()
  })

  it('says when an attempt failed, with its error, and when a task is dead-lettered', async () => {
    const { id } = await net.nodes[1]!.tasks!.service.submit({ capability: 'fail', input: { times: 5, message: 'the model said no' }, maxAttempts: 1 })
    await waitFor(() => lines.some(l => l.event === 'task-dead' && l.task === id), { what: 'a task-dead line' })
    expect(lines.find(l => l.event === 'attempt-failed' && l.task === id)).toMatchObject({ level: 40, capability: 'fail', error: expect.stringContaining('the model said no') })
    expect(lines.find(l => l.event === 'task-dead' && l.task === id)?.msg).toMatch(/dead-lettered: .*the model said no/)
  })

  it('says when a run\'s result was refused because another claim holds the task (a duplicate execution)', async () => {
    // as the executor tells it when the members refuse a result under a lapsed lease's term
    net.nodes[0]!.tasks!.events.safeDispatchEvent('ran', { detail: { id: 'c'.repeat(64), capability: 'fail', generation: 0, outcome: 'duplicate', runMs: 5, error: 'term 1 is stale: term 2 is current' } })
    const line = lines.find(l => l.event === 'duplicate-execution')
    expect(line).toMatchObject({ level: 40, task: 'c'.repeat(64), capability: 'fail' })
    expect(line.msg).toMatch(/refused, another claim holds the task .*term 1 is stale/)
  })

  it('cuts a long message, argument or field to LOG_STRING_MAX_CHARS, saying how much it left out', () => {
    const out: any[] = []
    const log = pino(operatorLogOptions('info'), new Writable({ write (chunk, _enc, done) { out.push(JSON.parse(String(chunk))); done() } }))
    const huge = 'e'.repeat(3 * 1024 * 1024)
    log.warn({ event: 'attempt-failed', error: huge, reasons: [huge] }, `failed: ${huge}`)
    log.error('%s failed: %s', 'POST /v1/chat/completions', huge)
    const [first, second] = out
    expect(first.error).toHaveLength(LOG_STRING_MAX_CHARS + ` (${huge.length - LOG_STRING_MAX_CHARS} more characters)`.length + 3)
    expect(first.error).toMatch(/\.\.\. \(\d+ more characters\)$/)
    expect(first.reasons[0].length).toBeLessThan(LOG_STRING_MAX_CHARS + 100)
    expect(first.msg.length).toBeLessThan(LOG_STRING_MAX_CHARS + 100)
    expect(second.msg.length).toBeLessThan(LOG_STRING_MAX_CHARS + 200)
    expect(second.msg).toMatch(/^POST \/v1\/chat\/completions failed: eee/)
    expect(first.event).toBe('attempt-failed')
  })

  it('says when a peer joined', async () => {
    await waitFor(() => lines.some(l => l.event === 'peer-joined' && l.peer === net.nodes[1]!.peerId.toString()), { what: 'a peer-joined line' })
  })
})
