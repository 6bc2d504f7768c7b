import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32c } from '@node-rs/crc32'
import { DataDirError } from '../errors.js'
import { DamagedTableError, VarintReader, unmask } from './table-check.js'

/*
 * LevelDB keeps what was written since its last compaction only in its write-ahead log, the
 * NNNNNN.log the MANIFEST names. A store whose log was deleted while its tables remain opens
 * without a word: the member started as itself, its node key in a table, without the grants and
 * votes of its last run, which it could then give again otherwise. LevelDB creates that log before
 * the MANIFEST names it and deletes a log only once the MANIFEST names a newer one, so the named
 * log is missing only when something outside LevelDB removed it. The formats:
 * https://github.com/google/leveldb/blob/main/doc/log_format.md and db/version_edit.cc.
 */

const BLOCK_BYTES = 32_768
const HEADER_BYTES = 7
/** a record's kinds: whole, or the first, middle or last fragment of one */
const FULL = 1
const FIRST = 2
const MIDDLE = 3
const LAST = 4
/** VersionEdit tags: what follows each, to skip or read it */
const TAG_COMPARATOR = 1
const TAG_LOG_NUMBER = 2
const TAG_NEXT_FILE = 3
const TAG_LAST_SEQUENCE = 4
const TAG_COMPACT_POINTER = 5
const TAG_DELETED_FILE = 6
const TAG_NEW_FILE = 7
const TAG_PREV_LOG_NUMBER = 9
/** what each other tag carries: how many varints, then how many length-prefixed strings */
const SHAPES: Record<number, [number, number]> = {
  [TAG_COMPARATOR]: [0, 1],
  [TAG_NEXT_FILE]: [1, 0],
  [TAG_LAST_SEQUENCE]: [1, 0],
  [TAG_PREV_LOG_NUMBER]: [1, 0],
  [TAG_COMPACT_POINTER]: [1, 1],
  [TAG_DELETED_FILE]: [2, 0],
  [TAG_NEW_FILE]: [3, 2]
}

/** Refuses a store whose MANIFEST names a write-ahead log that is not there. */
export async function refuseMissingLog (path: string): Promise<void> {
  const log = await namedLog(path)
  if (log === undefined) return
  const file = logFile(log)
  if (!await isMissing(join(path, file))) return
  // read before LevelDB's lock is taken: a daemon that has the store open may have named a newer
  // log and deleted this one since. LevelDB deletes a log only once the MANIFEST on disk names a
  // newer one, so a second reading tells: a store in use is left to LevelDB's lock to refuse
  if (await namedLog(path) !== log) return
  throw new DataDirError(`the store at ${path} lost its write-ahead log ${file}, which its MANIFEST names: what was written since its last compaction (this member's latest grants and votes among it) is gone, and starting on the tables alone could make it grant or vote against them. Restore the data dir from a backup, or start with a new data dir as a new peer`)
}

const logFile = (n: number): string => `${String(n).padStart(6, '0')}.log`

async function isMissing (file: string): Promise<boolean> {
  return access(file).then(() => false, (err: any) => err?.code === 'ENOENT')
}

/**
 * The log number the store's MANIFEST names last; undefined when there is none to check (a new
 * store, or one LevelDB never gave a log), or when the MANIFEST cannot be read as expected: its own
 * checksums are LevelDB's to refuse, at open.
 */
export async function namedLog (path: string): Promise<number | undefined> {
  const current = await readFile(join(path, 'CURRENT'), 'utf8').catch(() => undefined)
  const name = current?.trim()
  if (name === undefined || !/^MANIFEST-\d+$/.test(name)) return undefined
  const manifest = await readFile(join(path, name)).catch(() => undefined)
  if (manifest === undefined) return undefined
  let log: number | undefined
  for (const record of logRecords(manifest)) {
    const named = logNumberOf(record)
    if (named === null) return undefined
    if (named !== undefined) log = named
  }
  return log === 0 ? undefined : log
}

/** The records of a file in LevelDB's log format, up to the first that fails its checksum. */
function * logRecords (file: Buffer): Generator<Buffer> {
  let fragments: Buffer[] = []
  for (let block = 0; block < file.length; block += BLOCK_BYTES) {
    const end = Math.min(block + BLOCK_BYTES, file.length)
    let at = block
    while (end - at >= HEADER_BYTES) {
      const length = file.readUInt16LE(at + 4)
      const type = file[at + 6] as number
      // zeroes to the block's end: padding
      if (type === 0 && length === 0) break
      const data = file.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length)
      if (at + HEADER_BYTES + length > end || unmask(file.readUInt32LE(at)) !== crc32c(file.subarray(at + 6, at + HEADER_BYTES + length)) >>> 0) return
      at += HEADER_BYTES + length
      if (type === FULL) yield data
      else if (type === FIRST) fragments = [data]
      else if (type === MIDDLE) fragments.push(data)
      else if (type === LAST) {
        fragments.push(data)
        yield Buffer.concat(fragments)
        fragments = []
      } else return
    }
  }
}

/** The log number a VersionEdit sets, undefined if it sets none, null if it does not read as one. */
function logNumberOf (edit: Buffer): number | undefined | null {
  const reader = new VarintReader(edit, 'MANIFEST')
  let log: number | undefined
  try {
    while (!reader.done()) {
      const tag = reader.varint()
      if (tag === TAG_LOG_NUMBER) {
        log = reader.varint()
        continue
      }
      const shape = SHAPES[tag]
      if (shape === undefined) return null
      for (let i = 0; i < shape[0]; i++) reader.varint()
      for (let i = 0; i < shape[1]; i++) reader.skip(reader.varint())
    }
  } catch (err) {
    if (err instanceof DamagedTableError) return null
    throw err
  }
  return log
}
