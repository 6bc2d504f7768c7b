import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { LevelReplicaStore } from '../node/store/replica-store.js'
import { Store } from '../node/store/store.js'
import { canonicalJson } from '../protocols/task/index.js'
import type { LeaseState, TaskRecord } from '../protocols/task/index.js'

/**
 * The check behind "at most one accepted result per task", made on every node's own store rather
 * than on whichever node a client happened to ask: each node's copy of each task record (its
 * certified `final` with the claim) and the result it would serve, compared across all nodes and
 * with what clients were told.
 */

/** One node's copy of one task, as its store holds it after the run. */
export interface StoredCopy {
  node: number
  id: string
  /** the generation of the final state (a redrive opens a new one); the record's own when not final */
  generation: number
  /** the final state, when there is one */
  state?: string
  claimId?: string
  /** attempts the record marks completed, in that generation */
  completedAttempts: number
  /** hash of the result this node would serve (replica.get's: only the committed claim's) */
  resultHash?: string
  /** an unfinished copy spelled out (placement, attempts, lease, vote): why a task did not finish */
  detail?: string
}

/** One execution (a claim) as the stores recorded it: who ran what, when, and how it ended. */
export interface StoredExecution {
  claimId: string
  taskId: string
  /** a subtask (a planner's child), not a task the workload submitted */
  subtask: boolean
  peer: string
  startedAt: number
  endedAt?: number
  outcome: string
}

/** What a client was told when it read a task as completed. */
export interface ClientRead {
  id: string
  /** the node that answered */
  node: number
  /** the claim whose result it was, when the answer names it */
  claimId?: string
  resultHash?: string
}

export interface ResultAudit {
  /** stores opened and read */
  nodesRead: number
  /** stores that could not be read, with why: the check did not cover them */
  unreadable: string[]
  /** task copies read, over every store */
  copies: number
  /** copies holding a completed final */
  completedCopies: number
  /** tasks whose completed copies, or the reads of them, disagree on the claim or the result */
  conflicts: number
  /**
   * Tasks some node's record lists with more than one completed attempt in one generation: a
   * second execution ran to the end and voted its result, which lost to the certified one. Not a
   * second accepted result (only the final's claim is accepted), so counted, not failed.
   */
  losingCompletions: number
  /** tasks a client read as completed that no node's store holds as completed with a result */
  unbacked: number
  /** the first few disagreements, spelled out */
  examples: string[]
}

/** A result value as compared here: the hash of its canonical JSON (key order does not matter). */
export function resultHash (value: unknown): string {
  return createHash('sha256').update(canonicalJson(value ?? null)).digest('hex').slice(0, 16)
}

/** Reads every task copy of each node's store (the node stopped, so its LevelDB is free). */
export async function readStores (dirs: Array<{ node: number, dir: string }>): Promise<{ copies: StoredCopy[], unreadable: string[], executions: StoredExecution[] }> {
  const copies: StoredCopy[] = []
  // by claim: copies of one attempt differ (one member saw it end, another not); an ended one wins
  const executions = new Map<string, StoredExecution>()
  const unreadable: string[] = []
  const log = defaultLogger().forComponent('agentmesh:sim:audit')
  for (const { node, dir } of dirs) {
    const path = join(dir, 'store')
    if (!existsSync(path)) {
      unreadable.push(`node ${node}: no store at ${path}`)
      continue
    }
    let store: Store | undefined
    try {
      store = await Store.open({ path, log })
      const level = new LevelReplicaStore(store)
      for await (const record of level.records()) {
        // Replica.get's rule, read without building a replica (it needs the node's key to sign):
        // a kept result counts only when its claim is the committed one
        const kept = await level.getResult(record.task.id)
        const final = record.final
        const result = kept !== undefined && final?.claimId === kept.claimId ? kept : undefined
        const generation = final?.generation ?? record.generation
        for (const a of record.attempts) {
          if (a.outcome === 'released' || a.peer === '') continue
          const known = executions.get(a.claimId)
          if (known === undefined || (known.endedAt === undefined && a.endedAt !== undefined) || (known.outcome !== 'completed' && a.outcome === 'completed')) {
            executions.set(a.claimId, { claimId: a.claimId, taskId: record.task.id, subtask: record.task.parent !== undefined, peer: a.peer, startedAt: a.startedAt, ...(a.endedAt === undefined ? {} : { endedAt: a.endedAt }), outcome: a.outcome })
          }
        }
        copies.push({
          node,
          id: record.task.id,
          generation,
          state: final?.state,
          claimId: final?.claimId,
          completedAttempts: record.attempts.filter(a => a.outcome === 'completed' && a.generation === generation).length,
          resultHash: result === undefined ? undefined : resultHash(result.value),
          ...(final === undefined ? { detail: describeUnfinished(record, await level.getLease(record.task.id)) } : {})
        })
      }
    } catch (err: any) {
      unreadable.push(`node ${node}: ${String(err?.message ?? err)}`)
    } finally {
      await store?.close().catch(() => {})
    }
  }
  return { copies, unreadable, executions: [...executions.values()] }
}

const short = (s: string | undefined): string => s === undefined ? 'none' : s.slice(0, 8)
const tail = (s: string | undefined): string => s === undefined ? 'none' : s.slice(-6)

/** One node's view of a task that did not finish, in one line. */
function describeUnfinished (record: TaskRecord, lease: LeaseState | undefined): string {
  const now = Date.now()
  const attempts = record.attempts.filter(a => a.generation === record.generation).map(a => `${tail(a.peer)}:${a.outcome}`).join(',')
  const holder = lease?.claimId === undefined ? 'no lease' : `lease ${tail(lease.holder)} term ${lease.term} ${(lease.expiresAt ?? 0) > now ? 'live' : 'lapsed'}`
  const vote = lease?.vote === undefined || lease.vote.generation !== record.generation ? 'no vote' : `voted ${lease.vote.value.state}${lease.vote.value.claimId === undefined ? '' : ` ${short(lease.vote.value.claimId)}`} epoch ${lease.vote.epoch}`
  const sealed = lease?.sealedEpoch === undefined ? '' : ` sealed ${lease.sealedEpoch}`
  return `epoch ${record.placement.epoch} [${record.placement.members.map(tail).join(',')}] attempts [${attempts}] ${holder}, ${vote}${sealed}${record.notBefore === undefined ? '' : `, notBefore ${record.notBefore - now} ms`}`
}

/**
 * Every pair of nodes holding a completed final of one task (and generation) must name the same
 * claim and hold the same result; every client read of a completed task must match them too.
 * Grouping by value is the pairwise check: a group with two distinct values has a disagreeing pair.
 */
export function auditResults (copies: StoredCopy[], reads: ClientRead[], meta: { nodesRead: number, unreadable: string[] }, maxExamples = 5): ResultAudit {
  const groups = new Map<string, StoredCopy[]>()
  const conflicting = new Set<string>()
  const examples: string[] = []
  const byId = new Map<string, string[]>()
  const multiple = new Set<string>()
  for (const copy of copies) {
    if (copy.completedAttempts > 1) multiple.add(copy.id)
    if (copy.state !== 'completed') continue
    const key = `${copy.id}/${copy.generation}`
    const group = groups.get(key)
    if (group === undefined) {
      groups.set(key, [copy])
      byId.set(copy.id, [...(byId.get(copy.id) ?? []), key])
    } else group.push(copy)
  }
  const note = (id: string, text: string): void => {
    conflicting.add(id)
    if (examples.length < maxExamples) examples.push(`task ${id.slice(0, 12)}: ${text}`)
  }
  const claimsOf = (group: StoredCopy[]): Set<string | undefined> => new Set(group.map(c => c.claimId))
  const resultsOf = (group: StoredCopy[]): Set<string> => new Set(group.flatMap(c => c.resultHash === undefined ? [] : [c.resultHash]))
  for (const [key, group] of groups) {
    const id = key.slice(0, key.indexOf('/'))
    const claims = claimsOf(group)
    const results = resultsOf(group)
    if (claims.size > 1) note(id, `nodes name different claims: ${group.map(c => `node ${c.node}: ${short(c.claimId)}`).join(', ')}`)
    else if (results.size > 1) note(id, `nodes hold different results of claim ${short(group[0]?.claimId)}: ${group.map(c => `node ${c.node}: ${short(c.resultHash)}`).join(', ')}`)
  }
  let unbacked = 0
  for (const read of reads) {
    const keyed = (byId.get(read.id) ?? []).map(k => groups.get(k) as StoredCopy[])
    const held = keyed.filter(g => resultsOf(g).size > 0)
    if (held.length === 0) {
      unbacked++
      if (examples.length < maxExamples) examples.push(`task ${read.id.slice(0, 12)}: read as completed from node ${read.node}, but no node's store holds it completed with a result`)
      continue
    }
    // a read matches one generation's agreed outcome (runs without redrives have one generation)
    const matches = held.some(g => (read.claimId === undefined || claimsOf(g).has(read.claimId)) && (read.resultHash === undefined || resultsOf(g).has(read.resultHash)))
    if (!matches) note(read.id, `node ${read.node} answered claim ${short(read.claimId)} with result ${short(read.resultHash)}; the stores hold ${held.map(g => `claim ${short(g[0]?.claimId)} with ${[...resultsOf(g)].map(short).join('/')}`).join(', ')}`)
  }
  return {
    nodesRead: meta.nodesRead,
    unreadable: meta.unreadable,
    copies: copies.length,
    completedCopies: [...groups.values()].reduce((n, g) => n + g.length, 0),
    conflicts: conflicting.size,
    losingCompletions: multiple.size,
    unbacked,
    examples
  }
}
