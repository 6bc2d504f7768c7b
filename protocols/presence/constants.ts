/** How often a node announces itself, ms. */
export const DEFAULT_INTERVAL_MS = 5_000

/** A peer silent for this many of its intervals drops out of the view (our own latest stall aside: PresenceInit.lastStall). */
export const DEFAULT_EXPIRY_INTERVALS = 3

/**
 * A peer's declared interval is trusted only within this factor of our own (from ours / 4 to
 * ours × 4): a peer declaring a huge one would never expire, a tiny one would flap in and out.
 */
export const DEFAULT_INTERVAL_RATIO = 4

/**
 * The most peers the view keeps. Presence costs every peer n² signature checks per interval, so a
 * mesh stops far below this; past it, the peer heard from least recently is forgotten first.
 */
export const DEFAULT_MAX_PEERS = 1_024

/** A peer silent for this many of its expiry periods is forgotten, not only out of the view. */
export const DEFAULT_FORGET_AFTER_EXPIRIES = 10

/** Capability descriptions ride on every this-many announcements. */
export const DEFAULT_CATALOG_EVERY = 10

/** How many peers, on average, greet a newcomer early. */
export const DEFAULT_WELCOMERS = 3
/** @default 1_000: the least time between two early announcements of a slot change */
export const DEFAULT_EARLY_GAP_MS = 1_000
