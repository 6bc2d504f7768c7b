import { CorruptRecordError } from '../errors.js'
import type { AbstractSublevel } from 'abstract-level'
import type { Level } from 'level'
import type { z } from 'zod'

/** keys read a step when counting */
const COUNT_BATCH = 1_000

type Sub = AbstractSublevel<Level<string, string>, string | Uint8Array, string, string>

/** One operation of a root-level batch, aimed at a namespace's sublevel. */
export type BatchOp = { type: 'put', sublevel: Sub, key: string, value: string } | { type: 'del', sublevel: Sub, key: string }

/** Writes a batch the store's way (its group commit): refused once the store failed a write (see StoreFailedError). */
export type BatchWriter = (ops: BatchOp[], options: NamespaceOptions) => Promise<void>

export interface NamespaceOptions {
  /** fsync before resolving: used for every write another peer relies on */
  sync?: boolean
}

/**
 * One typed key space of the store. Values are JSON checked against a schema on the way out, so a
 * corrupt or foreign record is reported and skipped instead of reaching the caller.
 */
export class Namespace<T> {
  readonly name: string
  private readonly db: Sub
  private readonly schema: z.ZodType<T>
  private readonly onCorrupt: (err: CorruptRecordError) => void
  private readonly writeBatch: BatchWriter

  constructor (name: string, db: Sub, schema: z.ZodType<T>, onCorrupt: (err: CorruptRecordError) => void, writeBatch: BatchWriter) {
    this.name = name
    this.db = db
    this.schema = schema
    this.onCorrupt = onCorrupt
    this.writeBatch = writeBatch
  }

  async get (key: string): Promise<T | undefined> {
    const raw = await this.db.get(key)
    return raw === undefined ? undefined : this.decode(key, raw)
  }

  /** Several values in one call into LevelDB (a call each costs more than the read itself). */
  async getMany (keys: string[]): Promise<Array<T | undefined>> {
    const raws = await this.db.getMany(keys)
    return raws.map((raw, i) => raw === undefined ? undefined : this.decode(keys[i] as string, raw))
  }

  /** The stored text under `key`, unchecked. */
  async raw (key: string): Promise<string | undefined> {
    return await this.db.get(key)
  }

  async put (key: string, value: T, options: NamespaceOptions = {}): Promise<void> {
    await this.writeBatch([this.putOp(key, value)], options)
  }

  /** A put for a batch on the root database: written with the batch, atomically. */
  putOp (key: string, value: T): BatchOp {
    return { type: 'put', sublevel: this.db, key, value: JSON.stringify(value) }
  }

  delOp (key: string): BatchOp {
    return { type: 'del', sublevel: this.db, key }
  }

  async del (key: string, options: NamespaceOptions = {}): Promise<void> {
    await this.writeBatch([this.delOp(key)], options)
  }

  /** Every readable record in key order; corrupt ones are reported and skipped. */
  async * entries (options: { gte?: string, lt?: string, limit?: number, reverse?: boolean } = {}): AsyncGenerator<[string, T]> {
    for await (const [key, raw] of this.db.iterator(options)) {
      const value = this.decode(key, raw)
      if (value !== undefined) yield [key, value]
    }
  }

  /** Every key and its stored text, unchecked, in key order. */
  async * rawEntries (): AsyncGenerator<[string, string]> {
    for await (const [key, raw] of this.db.iterator()) yield [key, raw]
  }

  /** Every key in key order, no value read, in batches as count reads them. */
  async * keys (): AsyncGenerator<string> {
    const keys = this.db.keys()
    try {
      for (let batch = await keys.nextv(COUNT_BATCH); batch.length > 0; batch = await keys.nextv(COUNT_BATCH)) yield * batch
    } finally {
      await keys.close()
    }
  }

  /** Whether it holds any key: one step of an iterator, where count reads them all. */
  async isEmpty (): Promise<boolean> {
    for await (const _ of this.db.keys({ limit: 1 })) return false
    return true
  }

  /** How many keys it holds, read in batches: a step of an async iterator per key cost twice as much. */
  async count (): Promise<number> {
    const keys = this.db.keys()
    let n = 0
    try {
      for (let batch = await keys.nextv(COUNT_BATCH); batch.length > 0; batch = await keys.nextv(COUNT_BATCH)) n += batch.length
    } finally {
      await keys.close()
    }
    return n
  }

  private decode (key: string, raw: string): T | undefined {
    let json: unknown
    try {
      json = JSON.parse(raw)
    } catch {
      this.onCorrupt(new CorruptRecordError(`${this.name}/${key}: not JSON`, { namespace: this.name, key }))
      return undefined
    }
    const parsed = this.schema.safeParse(json)
    if (!parsed.success) {
      this.onCorrupt(new CorruptRecordError(`${this.name}/${key}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { namespace: this.name, key }))
      return undefined
    }
    return parsed.data
  }
}
