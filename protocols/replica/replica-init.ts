import type { TaskRecord } from '../task/record.js'
import type { StoredResult } from '../task/store.js'
import type { Logger } from '@libp2p/interface'

export interface ReplicaInit {
  /** this peer's id: membership of a placement is checked against it */
  me: string
  /** signs a vote with the node key */
  sign: (bytes: Uint8Array) => Promise<Uint8Array> | Uint8Array
  /** votes one signature covers at most: those cast in one turn are signed together (vote-batch.ts); 1 signs each alone. @default 1 */
  voteSignBatchMax?: number
  /** @default 1_000 */
  backoffBaseMs?: number
  /** @default 60_000 */
  backoffCapMs?: number
  /** the replica's own clock: leases and deadlines are judged by it */
  now?: () => number
  /**
   * Completed and canceled tasks (and dead ones whose entry was dropped) are forgotten this long
   * after they ended; a copy arriving later is not stored again.
   * @default 604_800_000 (7 days)
   */
  retentionMs?: number
  /** finished tasks whose state is kept in memory after their commit, most recent first. @default 4_096 */
  recentFinished?: number
  /** the bytes of results those may hold. @default 33_554_432 (32 MiB) */
  recentFinishedBytes?: number
  /**
   * a task's final state was stored here: who waits on it can be told. After it is on disk, or
   * before when its certificate holds no vote cast in that write (its votes are on their signers'
   * disks); again if that write failed and a later one stores it
   */
  onFinal?: (record: TaskRecord, result: StoredResult | undefined) => void
  log: Logger
}

export interface ReplicaStats {
  grants: number
  denials: number
  staleResults: number
  results: number
  votes: number
  /** Ed25519 signatures made for votes: fewer than votes when a turn's votes are signed together */
  voteSignatures: number
  /** records or finals refused: a forged id, or a final state without a valid certificate */
  refusedRecords: number
  /** placements this member took from a co-member after missing the whole move (away for its seal and install) */
  missedMoves: number
  /** requests and copies refused for a task whose state here is unreadable on disk (see Replica.damaged) */
  damagedRefusals: number
}

/** A task this member should help decide: out of attempts, past its deadline, or voted but not final. */
export interface Undecided {
  record: TaskRecord
  voted: boolean
}
