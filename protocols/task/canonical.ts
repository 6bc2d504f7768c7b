/**
 * Canonical JSON: object keys sorted, no whitespace. Two peers that hash the same value get the
 * same bytes, which is what makes a task id a content hash.
 *
 * Written as loops and string appends: it runs several times on every task (ids, result hashes,
 * signed statements), and the map/filter/sort/join form allocated arrays at every level.
 */
export function canonicalJson (value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string': return JSON.stringify(value)
    case 'boolean': return value ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('non-finite number in canonical JSON')
      return JSON.stringify(value)
    case 'object': break
    default: return JSON.stringify(value) ?? 'null'
  }
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ','
      if (i in value) out += canonicalJson(value[i])
    }
    return out + ']'
  }
  const object = value as Record<string, unknown>
  const keys = sortedKeys(object)
  let out = '{'
  let first = true
  for (const key of keys) {
    const v = object[key]
    if (v === undefined) continue
    if (!first) out += ','
    first = false
    out += JSON.stringify(key) + ':' + canonicalJson(v)
  }
  return out + '}'
}

/** Beyond this many keys the built-in sort; below, an insertion sort that allocates nothing. */
const INSERTION_SORT_MAX = 24

/**
 * The object's own keys in UTF-16 code unit order, as the default sort orders strings, the same on
 * every peer. Objects here are small (records, votes, statements); Array.prototype.sort allocated
 * a work array for each, a seventh of everything a loaded node allocated.
 */
function sortedKeys (object: Record<string, unknown>): string[] {
  const keys = Object.keys(object)
  if (keys.length > INSERTION_SORT_MAX) return keys.sort()
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string
    let j = i - 1
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string
      j--
    }
    keys[j + 1] = key
  }
  return keys
}

/** A total order on otherwise equal candidates (by their canonical JSON), so that merging never depends on argument order. */
export function canonicalOrder<T> (a: T, b: T): number {
  const x = canonicalJson(a)
  const y = canonicalJson(b)
  return x < y ? -1 : x > y ? 1 : 0
}
