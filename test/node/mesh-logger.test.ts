import { describe, expect, it } from 'vitest'
import { meshLogger } from '../../node/mesh-logger.js'

describe('meshLogger', () => {
  it('is one silent logger, scopes included, when DEBUG is unset or empty', () => {
    for (const debug of [undefined, '', ' ']) {
      const log = meshLogger(undefined, debug).forComponent('libp2p:yamux')
      expect(log.enabled).toBe(false)
      // a stream's scope is the same object: nothing is made per stream
      expect(log.newScope('stream:1')).toBe(log)
      expect(meshLogger('node-1', debug).forComponent('agentmesh:node')).toBe(log)
      expect(() => { log('a %s', 'message'); log.error('an %s', 'error'); log.trace('a trace') }).not.toThrow()
    }
  })

  it('is libp2p\'s own when DEBUG names something (a logger made for each scope, as DEBUG=libp2p:* prints them)', () => {
    const log = meshLogger(undefined, 'libp2p:*').forComponent('libp2p:yamux')
    expect(log.newScope('stream:1')).not.toBe(log)
    expect(typeof log.error).toBe('function')
  })
})
