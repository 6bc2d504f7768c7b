/** A wait in milliseconds as a Retry-After header value: whole seconds, at least 1. */
export function retryAfterSeconds (ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}
