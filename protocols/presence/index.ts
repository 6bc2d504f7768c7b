/**
 * Presence: each node announces its capabilities, free slots and version on
 * `agentmesh/<mesh>/presence` every few seconds, and keeps a live view of the others. A peer
 * silent for three of its intervals drops out; the interval a peer declares is trusted only within
 * a factor of our own, so no peer can make itself immortal or flap by what it declares. The view
 * is bounded (least recently heard peers go first) and forgets long-silent peers. It is eventually
 * consistent: two peers may briefly disagree on who is live, and everything built on it (replica
 * sets, claim ranking) tolerates that. It proves nothing about a peer beyond its signature.
 */
export { PresenceService } from './presence.js'
export * from './constants.js'
export type { LastStall, PresenceInit, PresenceComponents, PresenceStats, PeerPresence } from './types.js'
