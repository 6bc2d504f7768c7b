import type { TaskState } from '../task/record.js'

export interface TallyRow { state: TaskState, capability: string, count: number }

type Counted = Pick<TallyRow, 'state' | 'capability'>

const rowKey = (c: Counted): string => `${c.state}\n${c.capability}`

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
  set (id: string, counted?: Counted): void {
    const before = this.rowOf.get(id)
    if (before !== undefined && counted !== undefined && before.state === counted.state && before.capability === counted.capability) return
    this.delete(id)
    if (counted === undefined) return
    const key = rowKey(counted)
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
    if (row.count === 0) this.rows.delete(rowKey(row))
  }

  /** The non-empty rows, copied, with `more` (tasks not kept here, such as unfinished ones) counted in. */
  entries (more: Iterable<Counted> = []): TallyRow[] {
    const rows = new Map([...this.rows].map(([key, row]) => [key, { ...row }]))
    for (const c of more) {
      const key = rowKey(c)
      const row = rows.get(key) ?? { state: c.state, capability: c.capability, count: 0 }
      row.count++
      rows.set(key, row)
    }
    return [...rows.values()]
  }
}
