/** Edit distance (Levenshtein): how many single-character edits turn `a` into `b`. */
export function editDistance (a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = row
  }
  return prev[b.length] as number
}

/**
 * The offered names closest to one nobody offers, as a "did you mean": within a third of its length
 * in edits (at least 2), or sharing its last dotted part (`reverse` for `text.reverse`). Closest first, at most three.
 */
export function closestNames (wanted: string, offered: Iterable<string>): string[] {
  const w = wanted.toLowerCase()
  const last = (s: string): string => s.slice(s.lastIndexOf('.') + 1)
  const limit = Math.max(2, Math.floor(wanted.length / 3))
  return [...new Set(offered)]
    .map(name => ({ name, d: editDistance(w, name.toLowerCase()) }))
    .filter(({ name, d }) => d <= limit || last(name.toLowerCase()) === last(w))
    .sort((a, b) => a.d - b.d || (a.name < b.name ? -1 : 1))
    .slice(0, 3)
    .map(({ name }) => name)
}

/** The submit warning for a capability no live peer offers, with the closest names when there are some. */
/** A submit's answer's `warning` field: none when a live peer offers the capability. */
export function unofferedField (capability: string, offered: ReadonlySet<string>): { warning?: string } {
  return offered.has(capability) ? {} : { warning: unofferedWarning(capability, offered) }
}

export function unofferedWarning (capability: string, offered: Iterable<string>): string {
  const close = closestNames(capability, offered)
  return `no live peer offers ${capability} yet${close.length === 0 ? '' : ` (did you mean ${close.join(' or ')}?)`}; the task waits for one until its deadline`
}
