/*
 * Work held to the end of the event loop's turn, in two steps: the turn's votes are signed in the
 * first (vote-batch.ts), and the writes their requests then make join the turn's LevelDB batch in
 * the second (the store's group commit). Node runs an immediate queued while immediates run in the
 * next turn only, so with one plain setImmediate each, every vote's write went to disk a turn late:
 * a turn of a loaded mesh in one process is tens of milliseconds. Both steps are queued together,
 * and the microtasks between them (the requests resumed by their signatures) run before the second.
 */

const signs: Array<() => void> = []
const writes: Array<() => void> = []
let signQueued = false
/** write steps queued and not run yet: a write joins the first of them */
let writeSteps = 0

/** Runs `fn` at the end of this turn, before the turn's writes step. */
export function beforeTurnWrites (fn: () => void): void {
  signs.push(fn)
  if (signQueued) return
  signQueued = true
  setImmediate(runSigns)
  writeSteps++
  setImmediate(runWrites)
}

/** Runs `fn` in the turn's writes step: after the signatures asked for before it. */
export function atTurnWrites (fn: () => void): void {
  writes.push(fn)
  if (writeSteps > 0) return
  writeSteps++
  setImmediate(runWrites)
}

function runSigns (): void {
  signQueued = false
  for (const fn of signs.splice(0)) fn()
}

function runWrites (): void {
  writeSteps--
  for (const fn of writes.splice(0)) fn()
}
