import { Role } from '@a2a-js/sdk'
import { describe, expect, it } from 'vitest'
import { MessageHistory } from '../../protocols/a2a/history.js'
import type { Message } from '@a2a-js/sdk'

const message = (id: string, text: string): Message => ({ messageId: id, contextId: '', taskId: '', role: Role.ROLE_USER, parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }], metadata: undefined, extensions: [], referenceTaskIds: [] })
const size = (m: Message): number => Buffer.byteLength(JSON.stringify(m))

describe('the A2A door\'s message history', () => {
  it('keeps the newest messages within its byte budget, forgets the oldest first, and keeps none bigger than the budget', () => {
    const one = message('m1', 'x'.repeat(100))
    const history = new MessageHistory(size(one) * 2)
    history.keep('t1', one)
    history.keep('t2', message('m2', 'y'.repeat(100)))
    expect(history.of('t1').map(m => m.messageId)).toEqual(['m1'])
    history.keep('t3', message('m3', 'z'.repeat(100)))
    expect(history.of('t1')).toEqual([])
    expect(['t2', 't3'].map(t => history.of(t)[0]?.messageId)).toEqual(['m2', 'm3'])
    // the same task kept again counts once
    history.keep('t3', message('m3', 'z'.repeat(100)))
    expect(history.of('t2').map(m => m.messageId)).toEqual(['m2'])
    history.keep('big', message('m4', 'w'.repeat(1_000)))
    expect(history.of('big')).toEqual([])
    expect(['t2', 't3'].map(t => history.of(t)[0]?.messageId)).toEqual(['m2', 'm3'])
    expect(new MessageHistory(0).of('t1')).toEqual([])
  })
})
