import { z } from 'zod'
import { TaskFinishedError, TaskNotWaitingError, majority, refusal } from '../../protocols/lease/index.js'
import { byteLength, canonicalJson, isWaiting, signalKey, stateOf } from '../../protocols/task/index.js'
import { findTask } from './find-task.js'
import { publishNotice } from './notices.js'
import { InvalidSignalError, InvalidTaskError, TaskNotFoundError, TaskPastDeadlineError } from './errors.js'
import { journalBytes, maxRecordBytes } from './options.js'
import { submitNow } from './submit-checks.js'
import type { TaskComponents } from './components.js'
import type { TaskView } from './find-task.js'
import type { Mover } from './mover.js'
import type { LeaseRequest } from '../../protocols/lease/index.js'
import type { Placement, Task, TaskRecord } from '../../protocols/task/index.js'

/*
 * What a user or an operator does to a task that exists: cancel, signal, redrive, drop, and the
 * forced move of a blocked placement. Each asks the task's placement, never this node alone.
 */

/** What the actions need from the task service. */
export interface ActionContext {
  c: TaskComponents
  get: (id: string) => Promise<TaskView>
  /** hands a task to a peer that runs it */
  announce: (task: Task, placement: Placement) => void
  wake: (id: string) => void
  mover?: Mover
  /** aborts this node's run of a task */
  stopRun?: (id: string) => void
  /** the task once final, or as it stands after `waitMs` */
  settle: (id: string, waitMs: number) => Promise<TaskView>
}

/** A majority of the placement votes canceled, unless another outcome got there first. */
export async function cancelTask (a: ActionContext, id: string): Promise<TaskView> {
  const view = await a.get(id)
  if (view.record.final !== undefined) return view
  const target = { id, placement: view.record.placement }
  // certified from a majority's votes (or a member's certificate) at once: a paused member holds the cancel up no longer
  const members = target.placement.members
  const asked = a.c.leases.askUntil(members, { op: 'cancel', id, epoch: target.placement.epoch }, majority(members.length), x => x.res.vote !== undefined || x.res.cert !== undefined)
  let answers = await asked.early
  let cert = await a.c.leases.certifyAndCommit(target, view.record.generation, answers)
  if (cert === undefined && answers.length < members.length) {
    // votes that split, or none: what every member says decides, as before
    answers = await asked.all
    cert = await a.c.leases.certifyAndCommit(target, view.record.generation, answers)
  }
  if (cert === undefined) {
    // every member answered that it holds no such task: this node's copy is all there is, left by a
    // submit refused for want of a majority (one with a key, kept for its retry). Nothing to cancel
    // and nothing will run it: the copy is forgotten, where it was refused as unavailable for ever
    if (view.record.placement.epoch === 0 && answers.every(x => x.res.status === 'UNKNOWN_TASK') && await a.c.replica.forgetCopy(id, 0)) {
      throw new TaskNotFoundError(id, 'no member of its placement holds it (its submit was refused for want of a majority): this node\'s copy is forgotten')
    }
    const refused = refusal(answers, 'no majority of the placement voted to cancel')
    if (refused.name !== 'TaskFinishedError') throw refused
    // members voted for another outcome, whose certificate is on its way: that outcome is the
    // answer, as for a cancel that comes after it (one vote each way and a member silent decides nothing yet)
    const settled = await a.settle(id, a.c.options.leaseMs)
    if (settled.record.final === undefined) throw refused
    return settled
  }
  // a run on this node hears no gossip of its own cancel: stopped now, not at its next renewal
  if (cert.value.state === 'canceled') a.stopRun?.(id)
  await publishNotice(a.c, { id, capability: view.record.task.capability, event: cert.value.state, generation: view.record.generation, cert })
  a.wake(id)
  return a.get(id)
}

/**
 * Delivers the signal `name` to a waiting task: its data is checked against the schema the wait
 * named, kept by a majority of the placement, and the task goes to a capable peer at once.
 * TaskNotWaitingError when it does not wait for `name`; InvalidSignalError when the data does not fit.
 */
export async function signalTask (a: ActionContext, id: string, name: string, data: unknown): Promise<TaskView> {
  const view = await a.get(id)
  const w = view.record.waiting
  // the same signal again (a client retrying after a lost answer) is answered as then, once a
  // majority holds it: this copy alone may be a member's that kept it while the others were away
  // (its sender was told 503), and a retry answered from it was told "delivered" by one member of three
  const given = view.record.journal?.[signalKey(name)] as { data?: unknown } | undefined
  if (given !== undefined && canonicalJson(given.data ?? null) === canonicalJson(data ?? null)) {
    await a.c.leases.signal({ id, placement: view.record.placement }, name, data, isWaiting(view.record) && w?.name === name ? w.claimId : undefined)
    // a retry may be the one that ended the wait (the first try's second round fell short)
    const fresh = await a.get(id)
    if (fresh.record.final === undefined) a.announce(fresh.record.task, fresh.record.placement)
    return fresh
  }
  if (w === undefined || w.name !== name || !isWaiting(view.record)) {
    if (given !== undefined) throw new TaskNotWaitingError(`signal "${name.slice(0, 40)}" was already given, with other data; the task is ${stateOf(view.record)}`)
    throw new TaskNotWaitingError(view.record.final !== undefined ? `the task is ${view.record.final.state}` : w !== undefined && isWaiting(view.record) ? `the task waits for "${w.name}", not "${name}"` : `the task is ${stateOf(view.record)}, not waiting for a signal`)
  }
  const size = journalBytes(view.record) + byteLength(data ?? null) + byteLength(name)
  if (size > maxRecordBytes(a.c.options)) throw new InvalidSignalError(`signal "${name.slice(0, 40)}": its data would grow the task's input and journal to ${size} bytes, past the ${maxRecordBytes(a.c.options)} a task may hold (maxInputBytes and 32 KiB)`)
  if (w.schema !== undefined) {
    const parsed = z.fromJSONSchema(w.schema as never).safeParse(data)
    if (!parsed.success) throw new InvalidSignalError(`signal "${name}" does not match the schema the task waits with: ${parsed.error.issues.slice(0, 3).map(i => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ')}`)
  }
  await a.c.leases.signal({ id, placement: view.record.placement }, name, data, w.claimId)
  const fresh = await a.get(id)
  a.announce(fresh.record.task, fresh.record.placement)
  return fresh
}

/** A new attempt budget for a dead task. TaskPastDeadlineError when its deadline has passed: no member would grant an attempt. */
export async function redriveTask (a: ActionContext, id: string): Promise<TaskView> {
  const view = await placementView(a.c, id)
  const deadline = view.record.task.deadline
  if (view.record.final?.state === 'dead' && submitNow(a.c) > deadline) {
    throw new TaskPastDeadlineError(`the task's deadline passed at ${new Date(deadline).toISOString()}: a redrive would die at once, unclaimed; submit it again instead`)
  }
  await toMajority(a.c, view.record, { op: 'redrive', id, epoch: view.record.placement.epoch, generation: view.record.generation })
  await publishNotice(a.c, { id, capability: view.record.task.capability, event: 'redriven', generation: view.record.generation + 1 })
  const fresh = await placementView(a.c, id)
  a.announce(fresh.record.task, fresh.record.placement)
  return fresh
}

export async function dropTask (a: ActionContext, id: string): Promise<void> {
  const view = await placementView(a.c, id)
  await toMajority(a.c, view.record, { op: 'drop', id, epoch: view.record.placement.epoch, generation: view.record.generation })
  // this node's copy is final already, so a read would not refresh it: it takes the drop directly
  await a.c.replica.put({ ...view.record, droppedGeneration: view.record.generation, updatedAt: Date.now() })
}

/**
 * An operator's move of a blocked task onto live peers, without a majority of its old placement.
 * It risks two results if the unreachable members are alive on the other side of a partition.
 */
export async function forcePlacement (a: ActionContext, id: string): Promise<{ id: string, placement: Placement, warning: string }> {
  if (a.mover === undefined) throw new InvalidTaskError('this node cannot move placements')
  const view = await a.get(id)
  if (view.record.final !== undefined) throw new TaskFinishedError(view.record.final.state)
  const gone = view.record.placement.members.filter(m => !a.c.membership.isLive(m))
  if (gone.length === 0) throw new InvalidTaskError('every member of the placement is live: nothing to force')
  const placement = await a.mover.move(view.record, gone, true)
  return { id, placement, warning: `moved without ${gone.length} unreachable member(s); if they are alive, the task may run to a second result` }
}

/**
 * The task as its placement has it: this node's copy may be a cache, final and settled in a
 * generation a redrive elsewhere has ended, and a redrive or drop of that generation would be
 * answered OK by members already past it, and do nothing.
 */
async function placementView (c: TaskComponents, id: string): Promise<TaskView> {
  const view = await findTask(c, id, { complete: true, absentByMajority: true })
  if (view === undefined) throw new TaskNotFoundError(id)
  return view
}

async function toMajority (c: TaskComponents, record: TaskRecord, req: LeaseRequest): Promise<void> {
  const answers = await c.leases.ask(record.placement.members, req)
  const ok = answers.filter(a => a.res.status === 'OK').length
  if (ok < majority(record.placement.members.length)) throw refusal(answers, `${ok} of ${record.placement.members.length} members agreed`)
}
