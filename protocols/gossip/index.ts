/**
 * Task gossip: announcements on `agentmesh/<mesh>/tasks/<capability>`, notices (completions,
 * with small results inline) on `agentmesh/<mesh>/results`, presence on `agentmesh/<mesh>/presence`.
 *
 * Promises: every delivered message was signed by the peer in its `from` field for that topic,
 * fits its schema and size limit, and (for tasks) carries an id that hashes its content.
 * Does not promise delivery: gossip drops messages under bursts, so nothing relies on it alone.
 */
export { MeshGossip } from './gossip.js'
export type { MeshGossipComponents, MeshGossipInit, MeshGossipEvents, RejectReason } from './gossip.js'
export * from './messages.js'
export * from './constants.js'
export { seal, open } from './envelope.js'
