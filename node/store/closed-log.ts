import { open, readdir, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { DataDirError } from '../errors.js'
import { namedLog } from './log-check.js'
import { writeSyncedFile } from './synced-file.js'

/** The file in which a clean stop notes its write-ahead logs' lengths. */
export const CLOSED_LOG_MARK = 'CLOSED-LOG'

/*
 * A log cut short by a crash loses at most the write under way, which nobody was told of: every
 * acknowledged write was synced. LevelDB cannot tell that from a log cut to half by a disk or a
 * hand, and opens on what is left without a word; the member would then grant and vote without
 * what it lost until anti-entropy brought it back. A clean stop notes the logs' lengths, synced,
 * and the next start refuses a log shorter than that, or gone. A stop by kill -9 notes nothing,
 * and a start after it is LevelDB's crash recovery, as before.
 */

/**
 * After the store closed cleanly: syncs the logs LevelDB will replay (the one its MANIFEST names and
 * any newer one: a stop during a compaction leaves the newest writes in the next log, not yet named)
 * and notes each one's length.
 */
export async function noteClosedLog (path: string): Promise<void> {
  const log = await namedLog(path)
  if (log === undefined) return
  const logs: Record<string, number> = {}
  for (const name of await readdir(path)) {
    const n = /^(\d+)\.log$/.exec(name)?.[1]
    if (n === undefined || Number(n) < log) continue
    const handle = await open(join(path, name), 'r')
    try {
      // the length noted must be on disk too: a power cut after this stop must not leave a shorter log
      await handle.sync()
      logs[name] = (await handle.stat()).size
    } finally {
      await handle.close()
    }
  }
  await writeSyncedFile(join(path, CLOSED_LOG_MARK), JSON.stringify({ log, logs }) + '\n')
}

/** Before LevelDB opens the store: refuses a log shorter than the last clean stop left it, or gone. */
export async function refuseShortLog (path: string): Promise<void> {
  const file = join(path, CLOSED_LOG_MARK)
  const text = await readFile(file, 'utf8').catch((err: any) => err?.code === 'ENOENT' ? undefined : err as Error)
  // no mark: the last stop was not clean (kill -9), and LevelDB's crash recovery is what is left
  if (text === undefined) return
  const noted = typeof text === 'string' ? parseMark(text) : undefined
  // the mark is written aside and renamed: one that cannot be read was damaged, and so may the logs be
  if (noted === undefined) throw new DataDirError(`the store at ${path} has a mark of its write-ahead logs' lengths at the last clean stop, ${file}, that cannot be read (${typeof text === 'string' ? 'not such a mark' : String((text as any).code ?? text.message)}): the data dir may be damaged, and a log cut short could not be told. Restore the data dir from a backup, or start with a new data dir as a new peer; to start without this check, delete ${file}`)
  // a mark from before the last open names a log LevelDB has replaced since: nothing to compare
  if (await namedLog(path) !== noted.log) return
  for (const [file, had] of Object.entries(noted.logs)) {
    const bytes = await stat(join(path, file)).then(s => s.size, () => 0)
    if (bytes >= had) continue
    throw new DataDirError(`the store at ${path} has a write-ahead log ${file} of ${bytes} bytes, where it had ${had} when this node last stopped cleanly: what was cut off (this member's latest grants and votes among it) is gone, and starting without it could make it grant or vote against them. Restore the data dir from a backup, or start with a new data dir as a new peer; to start on what remains anyway, delete ${join(path, CLOSED_LOG_MARK)}`)
  }
}

/** Once LevelDB opened the store (and moved on to a new log): the mark has served. */
export async function forgetClosedLog (path: string): Promise<void> {
  await rm(join(path, CLOSED_LOG_MARK), { force: true })
}

/** The mark's content; undefined when it cannot be read as one. */
function parseMark (text: string | undefined): { log: number, logs: Record<string, number> } | undefined {
  if (text === undefined) return undefined
  try {
    const { log, logs } = JSON.parse(text) as { log?: unknown, logs?: unknown }
    if (!Number.isSafeInteger(log) || logs === null || typeof logs !== 'object' || Array.isArray(logs)) return undefined
    const entries = Object.entries(logs)
    // one entry that cannot be read and the rest may not be all there is: not a mark
    if (!entries.every(e => /^\d+\.log$/.test(e[0]) && Number.isSafeInteger(e[1]))) return undefined
    return { log: log as number, logs: Object.fromEntries(entries) as Record<string, number> }
  } catch {
    return undefined
  }
}
