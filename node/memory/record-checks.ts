import { MAX_TEXT_BYTES } from '../../protocols/memory/index.js'
import { InvalidMemoryError } from './errors.js'

/*
 * What a record or a query must be to be useful, beyond its shape: checked where every door (the
 * API, the memory agents) passes, before anything is written. The wire and stored schemas stay as
 * they were, so records a replica already keeps still read.
 */

/**
 * An id is a path part of `DELETE /v1/memory/:collection/:id`: one with a lone surrogate has no
 * UTF-8 form, so no URL could name it and it could never be deleted.
 */
export function checkRecordId (id: string): void {
  if (!id.isWellFormed()) throw new InvalidMemoryError(`record id ${JSON.stringify(id.slice(0, 40))}: not well-formed Unicode (a lone surrogate), so no URL could name it`)
}

/** MAX_TEXT_BYTES counts UTF-8 bytes, as its name says, not characters. */
export function checkText (text: string | undefined, what: string): void {
  if (text === undefined) return
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_TEXT_BYTES) throw new InvalidMemoryError(`${what}: a text of ${bytes} bytes (UTF-8) is over the ${MAX_TEXT_BYTES} a record or query may hold`)
}

/**
 * Vectors are kept and compared as 32-bit floats by cosine: a component past float32's range
 * becomes infinite (and scored every query a perfect 1), and a vector that is all zeros there has
 * no direction to compare.
 */
export function checkVector (vector: number[], what: string): void {
  let nonzero = false
  for (const [i, x] of vector.entries()) {
    const f = Math.fround(x)
    if (!Number.isFinite(f)) throw new InvalidMemoryError(`${what}: component ${i} (${x}) is outside the range of a 32-bit float (about ±3.4e38)`)
    if (f !== 0) nonzero = true
  }
  if (!nonzero) throw new InvalidMemoryError(`${what}: a vector of zeros (as 32-bit floats) has no direction to compare by cosine`)
}
