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

/**
 * The stream this request was waiting on was torn down because the peer went silent (see
 * `maxConsecutiveTimeouts`); the request may or may not have run. A subclass of
 * RpcUnavailableError, so code that handles a broken stream handles this one too.
 */
export class RpcChannelResetError extends RpcUnavailableError {
  static override name = 'RpcChannelResetError'
  constructor (message: string) { super(message); this.name = 'RpcChannelResetError' }
}

/** The peer answered, but the answer failed the response schema the caller passed. */
export class RpcBadResponseError extends Error {
  static override name = 'RpcBadResponseError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, options); this.name = 'RpcBadResponseError' }
}

/** A frame's length prefix was longer than any frame could need: the stream is ended. */
export class FrameLengthError extends Error {
  static override name = 'FrameLengthError'
  constructor (message: string) { super(message); this.name = 'FrameLengthError' }
}
