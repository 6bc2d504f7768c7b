import { FrameLengthError } from './errors.js'

/** Longest length prefix read: a varint of 8 bytes is 2^56, far past any frame limit. */
const MAX_LENGTH_BYTES = 8

/** thrown, never built anew: see frameLength */
const INCOMPLETE = new RangeError('frame length not complete yet')

/**
 * A frame's varint length prefix, for `lpStream`'s reader. That reader takes the prefix a byte at
 * a time and asks again after each byte, and a RangeError means "not yet". The stock decoder
 * builds a new RangeError, stack trace and all, for every frame longer than 127 bytes (most of
 * ours): 5% of the CPU of a loaded mesh. This one throws one prebuilt error, and ends the stream
 * (a FrameLengthError) for a prefix longer than any frame could need, where the stock one kept
 * reading bytes.
 */
export function frameLength (buf: { subarray: () => Uint8Array }): number {
  const flat = buf.subarray()
  let value = 0
  let scale = 1
  for (let i = 0; i < flat.length; i++) {
    const byte = flat[i] as number
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return value
    scale *= 128
  }
  if (flat.length >= MAX_LENGTH_BYTES) throw new FrameLengthError(`frame length prefix longer than ${MAX_LENGTH_BYTES} bytes`)
  throw INCOMPLETE
}
