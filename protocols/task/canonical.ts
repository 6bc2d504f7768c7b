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
  // default sort: UTF-16 code unit order, the same on every peer
  const keys = Object.keys(object).sort()
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
