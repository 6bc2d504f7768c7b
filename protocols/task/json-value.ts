import { z } from 'zod'

/** More values than a frame or a result can hold: a value this large is refused, and so is a cycle. */
const MAX_NODES = 4_000_000

/**
 * Whether `value` is plain JSON: strings, finite numbers, booleans, null, arrays and plain objects
 * of them. Walked with a stack, not by recursion, so a deeply nested value cannot overflow it.
 */
export function isJsonValue (value: unknown): boolean {
  const stack: unknown[] = [value]
  let nodes = 0
  while (stack.length > 0) {
    if (++nodes > MAX_NODES) return false
    const v = stack.pop()
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return false
      continue
    }
    if (typeof v !== 'object') return false
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i])
      continue
    }
    const proto = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null) return false
    for (const key of Object.keys(v)) stack.push((v as Record<string, unknown>)[key])
  }
  return true
}

/**
 * A JSON value, checked in place. zod's `z.json()` is a lazy union that tries each branch and copies
 * every object and array it passes: it was most of the parse cost of a lease or records request
 * (inputs, results, journal steps). This one accepts the same values, returns the value itself,
 * and costs one walk.
 */
export function jsonValue (): z.ZodType<z.core.util.JSONType> {
  return z.custom<z.core.util.JSONType>(isJsonValue, { message: 'a JSON value (strings, finite numbers, booleans, null, arrays and plain objects)' })
}
