import { randomFillSync } from 'node:crypto'

/*
 * Random ids (task nonces, claim ids, trace ids) from one pool of CSPRNG bytes, refilled when
 * spent, as Node pools the bytes of randomUUID. A randomBytes call per id cost 20-25 µs of the
 * main thread under load (4% of a 3-node mesh's CPU in one process): a syscall each, where a
 * refill serves hundreds of ids.
 */

const POOL_BYTES = 4096
const pool = Buffer.alloc(POOL_BYTES)
let offset = POOL_BYTES

/** `bytes` fresh random bytes as lowercase hex; never the same bytes twice. */
export function randomHex (bytes: number): string {
  if (bytes > POOL_BYTES) return randomFillSync(Buffer.alloc(bytes)).toString('hex')
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool)
    offset = 0
  }
  const hex = pool.toString('hex', offset, offset + bytes)
  offset += bytes
  return hex
}
