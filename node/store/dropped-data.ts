import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DataDirError } from '../errors.js'
import { writeSyncedFile } from './synced-file.js'

/** The file that marks a store LevelDB opened by dropping data it could not read. */
export const DROPPED_DATA_MARK = 'DAMAGED'

/*
 * LevelDB opens a store whose log holds a damaged record by dropping what it cannot read: its LOG
 * says "(ignoring error) ... Corruption: ...", and the damaged log is deleted. The node then had
 * lost what the log held, its node key included on a young store: it started silently as a new
 * peer, or as the same one without the grants and votes it gave, which it could then give again.
 * Such an open is refused, now and on every later start, until an operator decides.
 */

function refusal (path: string, what: string): DataDirError {
  return new DataDirError(`LevelDB dropped damaged data when it opened the store at ${path} (${what}): this member may have lost task state or its node key, and starting on what remains could make it grant or vote against what it lost. Restore the data dir from a backup, or start with a new data dir as a new peer; to start on what remains anyway, delete ${join(path, DROPPED_DATA_MARK)}`)
}

/** Refuses a store marked by an earlier open that dropped data. */
export async function refuseMarked (path: string): Promise<void> {
  // a mark that is there but cannot be read still marks the store
  const mark = await readFile(join(path, DROPPED_DATA_MARK), 'utf8').catch((err: any) => err?.code === 'ENOENT' ? undefined : `(the mark cannot be read: ${String(err?.code ?? err?.message)})`)
  if (mark !== undefined) throw refusal(path, `marked at an earlier start: ${mark.trim().slice(0, 300)}`)
}

/** After an open: refuses, and marks the store, when LevelDB's log of this open tells of dropped data. */
export async function refuseDroppedData (path: string): Promise<void> {
  // LevelDB starts a new LOG at every open (the last one becomes LOG.old): this one is the open's own
  const log = await readFile(join(path, 'LOG'), 'utf8').catch(() => '')
  const dropped = log.split('\n').filter(line => line.includes('Corruption:'))
  if (dropped.length === 0) return
  const what = dropped.map(line => line.replace(/^\S+ \S+ /, '').trim()).join('; ')
  const marked = await writeMark(join(path, DROPPED_DATA_MARK), `${new Date().toISOString()} ${what}\n`)
  throw refusal(path, `its LOG: ${what.slice(0, 300)}${marked ? '' : '; the mark that refuses later starts could not be written, and the next start will not see this damage'}`)
}

/** Writes the mark to disk (synced: the LOG that told of the damage is gone at the next open); false if it could not. */
async function writeMark (file: string, text: string): Promise<boolean> {
  return writeSyncedFile(file, text).then(() => true, () => false)
}
