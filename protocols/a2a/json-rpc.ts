/** JSON-RPC 2.0's own error codes. */
export const PARSE_ERROR = -32700
export const INVALID_REQUEST = -32600
export const METHOD_NOT_FOUND = -32601
export const INVALID_PARAMS = -32602
export const INTERNAL_ERROR = -32603

/** Codes that say the request was at fault (counted as bad requests, not as errors of ours). */
export const CLIENT_FAULTS = new Set([PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS])

export type RpcId = string | number | null

export interface RpcError {
  code: number
  message: string
  data?: unknown
}
