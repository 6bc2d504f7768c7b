/** The most tasks one bulk submit takes (`submitMany`, a `POST /v1/tasks` array). @default 1_000 */
export const MAX_BULK_TASKS = 1_000
/** A bulk submit's `put-many` requests to one member are cut at about this many JSON bytes, well under the RPC frame limit. @default 262_144 */
export const BULK_CHUNK_BYTES = 256 * 1024
/** ... and at this many records, so that one request's writes end well within the RPC timeout. @default 250 */
export const BULK_CHUNK_RECORDS = 250
