import type { TaskState } from '../task/record.js'

export interface TallyRow { state: TaskState, capability: string, count: number }

/**
 * Finished tasks counted by final state and capability, kept in step with every write: a metrics
 * scrape reads these counts instead of walking the store, which grows with every task for the
 * retention period. A final state never changes with time, so a count made at write time stays true.
 */
export class FinalTally {
  /** id -> the row it is counted in */
  private readonly rowOf = new Map<string, TallyRow>()
  private readonly rows = new Map<string, TallyRow>()

  /** Counts `id` in the row of (state, capability), or in none (unfinished, or not a member). */
  set (id: string, counted?: { state: TaskState, capability: string }): void {
    const before = this.rowOf.get(id)
    if (before !== undefined && counted !== undefined && before.state === counted.state && before.capability === counted.capability) return
    this.delete(id)
    if (counted === undefined) return
    const key = `${counted.state}\n${counted.capability}`
    let row = this.rows.get(key)
    if (row === undefined) {
      row = { state: counted.state, capability: counted.capability, count: 0 }
      this.rows.set(key, row)
    }
    row.count++
    this.rowOf.set(id, row)
  }

  delete (id: string): void {
    const row = this.rowOf.get(id)
    if (row === undefined) return
    this.rowOf.delete(id)
    row.count--
    if (row.count === 0) this.rows.delete(`${row.state}\n${row.capability}`)
  }

  /** The non-empty rows, copied. */
  entries (): TallyRow[] {
    return [...this.rows.values()].map(r => ({ ...r }))
  }
}
