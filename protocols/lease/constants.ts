export const LEASE_PROTOCOL = '/agentmesh/lease/1.0.0'

/** @default 10_000: how long a grant lasts without renewal */
export const DEFAULT_LEASE_MS = 10_000
/** @default 1/3: the holder renews after this fraction of the lease (BullMQ renews at half) */
export const DEFAULT_RENEW_FRACTION = 1 / 3
/** @default 1_000: first retry delay after a failed attempt */
export const DEFAULT_BACKOFF_BASE_MS = 1_000
/** @default 60_000: retry delays double up to this */
export const DEFAULT_BACKOFF_CAP_MS = 60_000
/** @default 100: a claim that carries its vote waits this long for a majority of votes once a majority granted */
export const DEFAULT_VOTE_WAIT_MS = 100
/** @default 250: a vote, step or wait short of a majority for want of answers asks the silent members again after this, doubling, while the lease lasts */
export const DEFAULT_ASK_AGAIN_MS = 250
