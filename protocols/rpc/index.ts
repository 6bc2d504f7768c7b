/**
 * Request/response over one long-lived libp2p stream per peer and protocol.
 *
 * Promises: a request gets its answer, a named error (RpcUnavailableError, RpcTimeoutError,
 * RpcRemoteError, RpcChannelResetError, RpcBadResponseError), never silence. Many requests share
 * one stream (a request on an open stream costs ~0.4 ms here, opening a stream ~3-4 ms). Frames
 * are length-prefixed JSON with a size limit; a garbage or oversized frame closes that one stream
 * and is counted, never more. A request that times out or is aborted is forgotten on this side (an
 * answer that comes later is dropped and counted); a stream that stays silent through
 * `maxConsecutiveTimeouts` timeouts is torn down and the next request dials a new one. A server
 * runs at most `maxConcurrentHandlers` handlers per stream; further requests wait, unread.
 * With a caller's `schema`, an answer is parsed before it is returned.
 * Does not promise: delivery after a stream breaks (callers retry), ordering between requests, or
 * that a timed-out request did not run (the wire has no cancel: the remote handler finishes).
 */
export { fastCheck, fastParse } from './fast-check.js'
export { RpcEndpoint } from './rpc.js'
export { PeersHeard } from './heard.js'
export type { RpcInit, RpcHandler, RpcRequestOptions, RpcStats } from './rpc.js'
export * from './constants.js'
export * from './errors.js'
export { countServed, isBadRequest } from './served.js'
export type { ServedStats } from './served.js'
