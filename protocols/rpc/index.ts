/**
 * Request/response over one long-lived libp2p stream per peer and protocol.
 *
 * Promises: a request gets its answer, a named error (RpcUnavailableError, RpcTimeoutError,
 * RpcRemoteError), never silence. Many requests share one stream (a request on an open stream
 * costs ~0.4 ms here, opening a stream ~3-4 ms). Frames are length-prefixed JSON with a size limit;
 * a garbage or oversized frame closes that one stream and is counted, never more.
 * Does not promise: delivery after a stream breaks (callers retry), or ordering between requests.
 */
export { RpcEndpoint } from './rpc.js'
export type { RpcInit, RpcHandler, RpcStats } from './rpc.js'
export * from './errors.js'
