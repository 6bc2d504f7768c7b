/** The peer could not be reached, or the stream to it broke, before an answer came. */
export class RpcUnavailableError extends Error {
  static override name = 'RpcUnavailableError'
  constructor (message: string) { super(message); this.name = 'RpcUnavailableError' }
}

/** No answer within the request timeout. */
export class RpcTimeoutError extends Error {
  static override name = 'RpcTimeoutError'
  constructor (message: string) { super(message); this.name = 'RpcTimeoutError' }
}

/** The remote handler answered with an error status. */
export class RpcRemoteError extends Error {
  static override name = 'RpcRemoteError'
  readonly code: string
  constructor (code: string, message: string) { super(message); this.name = 'RpcRemoteError'; this.code = code }
}
