/**
 * A2A (Agent2Agent) door: every node serves the mesh as one A2A agent, with the SDK's own
 * JSON-RPC handlers (A2A 1.0 and 0.3 method names) on Fastify. The agent card, at
 * /.well-known/agent-card.json, lists the mesh's live capabilities as skills; a message that names
 * a skill in `metadata.skill` runs that capability with its data part (or text) as input, and a
 * plain text message goes to the `agent` capability. The A2A task id is the mesh task id, so any
 * node answers tasks/get and tasks/cancel for any task, and its state follows the mesh task's.
 *
 * It does not promise: follow-up messages to a task (one message, one task), push notifications,
 * tasks/list, or progress inside a stream (a stream reports state changes and the result).
 */
export { A2A_PATH, AGENT_CARD_PATH, OLD_AGENT_CARD_PATH, DEFAULT_SEND_WAIT_MS, DEFAULT_STATUS_POLL_MS, SKILL_KEY, MESH_META_KEY } from './constants.js'
export { createA2ADoor } from './door.js'
export type { A2ADoor, A2ADoorInit, A2ADoorContext, A2AStats } from './door.js'
export { MeshRequestHandler } from './handler.js'
export type { A2AMesh, MeshHandlerInit } from './handler.js'
export { agentCard, legacyAgentCard, skillsOf } from './card.js'
export { a2aTaskOf, a2aStateOf, meshRequestOf } from './convert.js'
export { checkEnvelope } from './rpc.js'
