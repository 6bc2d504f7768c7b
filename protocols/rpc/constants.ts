/** @default 1_048_576: the largest frame read or written */
export const DEFAULT_MAX_FRAME_BYTES = 1_048_576
/** @default 5_000: how long a request waits for its answer (and a stream for its dial) */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000
/** @default 8: inbound streams per connection for one protocol */
export const DEFAULT_MAX_INBOUND_STREAMS = 8
/** @default 32: handlers running at once for one inbound stream */
export const DEFAULT_MAX_CONCURRENT_HANDLERS = 32
/** @default 2: timeouts in a row, with no frame from the peer between them, that tear a stream down */
export const DEFAULT_MAX_CONSECUTIVE_TIMEOUTS = 2
