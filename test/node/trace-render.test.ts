import { describe, expect, it } from 'vitest'
import { renderTrace } from '../../node/cli/trace-command.js'

describe('agentmesh trace: the timeline it prints', () => {
  it('numbers attempts as their grants do: a run that resumes a wait keeps its number, a redrive starts from 1', () => {
    const run = (generation: number, outcome: string, startedAt: number): { peer: string, generation: number, outcome: string, startedAt: number, endedAt: number } => ({ peer: '12D3KooWpeer', generation, outcome, startedAt, endedAt: startedAt + 5 })
    const lines = renderTrace(undefined, [{ id: 'a'.repeat(64), capability: 'agent', state: 'completed', depth: 0, createdAt: 0, finishedAt: 100, submitter: '12D3KooWsubmitter', history: [run(0, 'failed', 10), run(0, 'suspended', 20), run(0, 'expired', 30), run(1, 'completed', 40)] }])
    expect(lines.filter(l => l.includes(' attempt ')).map(l => l.match(/attempt (\d+) on .*: (\w+)/)?.slice(1))).toEqual([['1', 'failed'], ['2', 'suspended'], ['2', 'expired'], ['1', 'completed']])
  })

  it('names the members whose votes certify the outcome, when the node sends them', () => {
    const task = { id: 'a'.repeat(64), capability: 'echo', state: 'completed', depth: 0, createdAt: 0, finishedAt: 9, submitter: '12D3KooWsubmitter', history: [] }
    expect(renderTrace(undefined, [{ ...task, placement: { members: ['12D3KooWmemberAAA', '12D3KooWmemberBBB', '12D3KooWmemberCCC'] }, certifiedBy: ['12D3KooWmemberAAA', '12D3KooWmemberCCC'] }]).at(-1)).toMatch(/\+9 ms +completed, certified by 2 of 3 \(emberAAA, emberCCC\)$/)
    expect(renderTrace(undefined, [task]).at(-1)).toMatch(/\+9 ms +completed$/)
  })
})
