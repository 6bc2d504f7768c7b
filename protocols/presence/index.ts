/**
 * Presence: each node announces its capabilities, free slots and version on
 * `agentmesh/<mesh>/presence` every few seconds, and keeps a live view of the others. A peer
 * silent for three of its intervals drops out. The view is eventually consistent: two peers may
 * briefly disagree on who is live, and everything built on it (replica sets, claim ranking)
 * tolerates that.
 */
export { PresenceService } from './presence.js'
export type { PresenceInit, PresenceComponents, PeerPresence } from './presence.js'
