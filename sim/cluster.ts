import type { TaskSpec } from './workload.js'

export interface TaskOutcome {
  state: string
  result?: unknown
  /** the node that answered */
  node: number
  /** the claim whose result this is, when the answer names it */
  claimId?: string
  executor?: string
}

export interface NodeFigures {
  index: number
  peerId: string
  alive: boolean
  stats?: any
}

/** What the simulator drives: many real nodes, in one process or as child processes. */
export interface Cluster {
  readonly kind: 'in-process' | 'processes'
  start: (n: number) => Promise<void>
  live: () => number[]
  peerIdOf: (index: number) => string
  submit: (index: number, spec: TaskSpec) => Promise<string>
  /** the task's state seen from a live node, waiting up to waitMs for it to finish */
  outcome: (id: string, waitMs: number) => Promise<TaskOutcome | undefined>
  /**
   * Tasks a live node lists as blocked because their move found split votes that a lost member
   * could have certified either way, or because a majority of their placement was removed for good
   * (churn): a decision that needs that member or an operator. Asked at the end of a run. Child
   * processes cannot tell why a task is listed: none there.
   */
  blocked: () => Promise<Set<string>>
  /** a live node running at least one task, if any */
  busyNode: () => Promise<number | undefined>
  crash: (index: number) => Promise<void>
  restart: (index: number) => Promise<void>
  pause: (index: number, durationMs: number) => Promise<void>
  partition: (groups: number[][], durationMs: number) => Promise<void>
  setLoss: (fraction: number) => void
  addNode: () => Promise<number>
  removeNode: (index: number) => Promise<void>
  flood: (messages: number) => Promise<number>
  figures: () => Promise<NodeFigures[]>
  edges: () => Array<[number, number]>
  /** every node's data dir, stopped nodes' too: their stores are read after stop() */
  dataDirs: () => Array<{ node: number, dir: string }>
  stop: () => Promise<void>
}

/**
 * Whether too few of these members are left, once those removed for good (churn) are gone, to make
 * the majority a move needs: only an operator's force-placement moves such a task.
 */
export function lostForGood (members: readonly string[], removed: ReadonlySet<string>): boolean {
  const left = members.filter(m => !removed.has(m)).length
  return left < Math.floor(members.length / 2) + 1
}

export class UnsupportedFaultError extends Error {
  static override name = 'UnsupportedFaultError'
  constructor (message: string) { super(message); this.name = 'UnsupportedFaultError' }
}
