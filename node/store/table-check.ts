import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { crc32c } from '@node-rs/crc32'

/*
 * LevelDB keeps a CRC32C with every block of a table, but classic-level never asks LevelDB to check
 * them when it reads: a damaged block was served as whatever the damage made of it (a changed
 * value, a vanished key), and LevelDB's merge at open wrote it into a new table with a good
 * checksum, or aborted the process on keys out of order. So every table's blocks are checked here,
 * before LevelDB opens the store. The format: https://github.com/google/leveldb/blob/main/doc/table_format.md
 */

const require = createRequire(import.meta.url)
const snappy = require('snappyjs') as { uncompress: (data: Uint8Array, maxLength?: number) => Uint8Array }

const FOOTER_BYTES = 48
/** the fixed64 at a table's end, little-endian */
const MAGIC_LOW = 0x8b80fb57
const MAGIC_HIGH = 0xdb477524
/** a block's trailer: its compression type, then the masked CRC32C of the block and that byte */
const TRAILER_BYTES = 5
const MASK_DELTA = 0xa282ead8
const SNAPPY = 1
/** no index or meta block of a table of LevelDB's default size comes near this */
const MAX_INDEX_BYTES = 64 * 1024 * 1024

/** A table that fails its checks: which file, and what is wrong where. */
export class DamagedTableError extends Error {
  static override name = 'DamagedTableError'
  constructor (readonly file: string, message: string) {
    super(`${file}: ${message}`)
    this.name = 'DamagedTableError'
  }
}

interface Handle { offset: number, size: number }

/** What the check found: tables checked, and `unfinished`, those without a footer left to LevelDB. */
export interface TablesChecked { tables: number, unfinished: number }

/** Checks every table (`NNNNNN.ldb` or `.sst`) among `names`, the files of a LevelDB directory; DamagedTableError at the first that fails. */
export async function checkTables (dir: string, names: readonly string[]): Promise<TablesChecked> {
  const found = { tables: 0, unfinished: 0 }
  for (const name of names.filter(n => /^\d+\.(ldb|sst)$/.test(n)).sort()) {
    if (await checkTable(join(dir, name), name)) found.tables++
    else found.unfinished++
  }
  return found
}

/** Whether the table was checked: false for one without its footer, left to LevelDB. */
async function checkTable (path: string, name: string): Promise<boolean> {
  // a table is a few MiB at most (LevelDB's default 2 MiB): read whole, its blocks checked in memory
  const table = await readFile(path)
  const size = table.length
  if (size < FOOTER_BYTES) return false
  const footer = table.subarray(size - FOOTER_BYTES)
  // LevelDB writes a table whole, footer last, and syncs it before naming it live: one without its
  // footer is what a crash left of a table being written, which LevelDB deletes at open. Left to it
  // (were it live, LevelDB's own read at open refuses it: "not an sstable")
  if (footer.readUInt32LE(40) !== MAGIC_LOW || footer.readUInt32LE(44) !== MAGIC_HIGH) return false
  const reader = new VarintReader(footer, name)
  const metaindex = reader.handle()
  const index = reader.handle()
  const within = (h: Handle, what: string): Handle => {
    if (h.offset + h.size + TRAILER_BYTES > size - FOOTER_BYTES) throw new DamagedTableError(name, `${what} at ${h.offset} (${h.size} bytes) lies outside the file`)
    return h
  }
  // the index block names every data block; the metaindex names the filter block, if any
  for (const [what, h] of [['the index block', within(index, 'the index block')], ['the metaindex block', within(metaindex, 'the metaindex block')]] as const) {
    const contents = checkedBlock(table, h, name, what, true)
    for (const child of blockValues(contents, name, what)) checkedBlock(table, within(child, `a block named by ${what}`), name, `the block at ${child.offset}`, false)
  }
  return true
}

/** A block's contents once its trailer's checksum matches, uncompressed when `uncompress` (a data block is only checked). */
function checkedBlock (table: Buffer, h: Handle, name: string, what: string, uncompress: boolean): Uint8Array {
  const data = table.subarray(h.offset, h.offset + h.size + TRAILER_BYTES)
  const stored = unmask(data.readUInt32LE(h.size + 1))
  const actual = crc32c(data.subarray(0, h.size + 1)) >>> 0
  if (stored !== actual) throw new DamagedTableError(name, `${what} (${h.size} bytes) fails its checksum`)
  const type = data[h.size]
  const contents = data.subarray(0, h.size)
  if (type === 0 || !uncompress) return contents
  if (type !== SNAPPY) throw new DamagedTableError(name, `${what} has an unknown compression type ${String(type)}`)
  try {
    return snappy.uncompress(contents, MAX_INDEX_BYTES)
  } catch (err: any) {
    throw new DamagedTableError(name, `${what} does not uncompress: ${String(err?.message ?? err)}`)
  }
}

/** The values of a block's entries, read as block handles (an index or metaindex block). */
function * blockValues (block: Uint8Array, name: string, what: string): Generator<Handle> {
  const buf = Buffer.from(block.buffer, block.byteOffset, block.byteLength)
  if (buf.length < 4) throw new DamagedTableError(name, `${what} is too short to hold its restart count`)
  const restarts = buf.readUInt32LE(buf.length - 4)
  const end = buf.length - 4 - restarts * 4
  if (restarts < 1 || end < 0) throw new DamagedTableError(name, `${what} has a restart count (${restarts}) its size cannot hold`)
  const reader = new VarintReader(buf.subarray(0, end), name)
  while (!reader.done()) {
    reader.varint() // bytes shared with the previous key
    const unshared = reader.varint()
    const valueBytes = reader.varint()
    reader.skip(unshared)
    const value = new VarintReader(reader.take(valueBytes), name)
    yield value.handle()
  }
}

/** A CRC32C as LevelDB stores it (masked), unmasked. */
export function unmask (masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0
  return ((rot >>> 17) | (rot << 15)) >>> 0
}

/** LevelDB's varints (7 bits a byte, low first) over a buffer; DamagedTableError past its end. */
export class VarintReader {
  private at = 0
  constructor (private readonly buf: Uint8Array, private readonly name: string) {}

  done (): boolean { return this.at >= this.buf.length }

  varint (): number {
    let value = 0
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.at >= this.buf.length) throw new DamagedTableError(this.name, 'a varint runs past its block')
      const byte = this.buf[this.at++] as number
      value += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return value
    }
    throw new DamagedTableError(this.name, 'a varint longer than 10 bytes')
  }

  handle (): Handle { return { offset: this.varint(), size: this.varint() } }

  skip (n: number): void { this.take(n) }

  take (n: number): Uint8Array {
    if (this.at + n > this.buf.length) throw new DamagedTableError(this.name, 'an entry runs past its block')
    const out = this.buf.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
}
