import { z } from 'zod'

/** More values than a frame or a result can hold: a value this large is refused, and so is a cycle. */
const MAX_NODES = 4_000_000
/** Deeper than JSON.stringify and the canonical form can write on a default stack (about 4,000 levels). */
export const MAX_JSON_DEPTH = 1_000

/**
 * Whether `value` is plain JSON: strings, finite numbers, booleans, null, arrays and plain objects
 * of them, nested at most MAX_JSON_DEPTH deep, with no key `__proto__` (zod's z.json() dropped it,
 * and an object that has it sets the prototype of whatever it is assigned into). Walked with a
 * stack, not by recursion. `maxDepth` tightens the depth for values others walk by recursion.
 */
export function isJsonValue (value: unknown, options: { undefinedMembers?: boolean, maxDepth?: number } = {}): boolean {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH
  const stack: unknown[] = [value]
  const depths: number[] = [0]
  let nodes = 0
  while (stack.length > 0) {
    if (++nodes > MAX_NODES) return false
    const v = stack.pop()
    const depth = depths.pop() as number
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return false
      continue
    }
    if (typeof v !== 'object' || depth >= maxDepth) return false
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        stack.push(v[i])
        depths.push(depth + 1)
      }
      continue
    }
    const proto = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null) return false
    for (const key of Object.keys(v)) {
      if (key === '__proto__') return false
      const member = (v as Record<string, unknown>)[key]
      // an agent's object may hold undefined members: left out on the wire, as JSON.stringify does
      if (member === undefined && options.undefinedMembers === true) continue
      stack.push(member)
      depths.push(depth + 1)
    }
  }
  return true
}

/**
 * A JSON value, checked in place. zod's `z.json()` is a lazy union that tries each branch and copies
 * every object and array it passes: it was most of the parse cost of a lease or records request
 * (inputs, results, journal steps). This one returns the value itself and costs one walk; a value
 * from this node's own agents is copied after the check, where it is kept (the local handlers).
 */
export function jsonValue (): z.ZodType<z.core.util.JSONType> {
  const what = JSON_VALUE_WHAT
  // a missing field says so: "required", not a list of what JSON may hold (whose depth, 1000 for a
  // peer's message, read as the API's own when a submit left its input out: that is 100)
  return z.custom<z.core.util.JSONType>(isJsonValue, { error: iss => iss.input === undefined ? 'required: any JSON value (null for none)' : what })
}

/** What a JSON value may hold, for error messages. */
export const JSON_VALUE_WHAT = `a JSON value (strings, finite numbers, booleans, null, arrays and plain objects, at most ${MAX_JSON_DEPTH} deep, no "__proto__" key)`

/** What copyJson returns for a value that has no plain-JSON form. */
export const NOT_JSON: unique symbol = Symbol('not JSON')

/**
 * A copy of `value` as the wire would carry it, checked as isJsonValue checks, in one walk: an
 * object member that is undefined is left out (JSON.stringify drops it too), anything else that is
 * not plain JSON makes the whole value NOT_JSON. For this node's own requests, whose values are
 * its agents' objects (see parseRequest): one walk where a structured clone was a second one.
 */
export function copyJson (value: unknown, depth = 0): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : NOT_JSON
  if (typeof value !== 'object' || depth >= MAX_JSON_DEPTH) return NOT_JSON
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length)
    for (let i = 0; i < value.length; i++) {
      const v = copyJson(value[i], depth + 1)
      if (v === NOT_JSON) return NOT_JSON
      out[i] = v
    }
    return out
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return NOT_JSON
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    if (key === '__proto__') return NOT_JSON
    const member = (value as Record<string, unknown>)[key]
    if (member === undefined) continue
    const v = copyJson(member, depth + 1)
    if (v === NOT_JSON) return NOT_JSON
    out[key] = v
  }
  return out
}

/**
 * A deep copy of a stored JSON value (a task's input, a journal step, a result), for an agent that
 * may change what it is given: one walk, where structuredClone serialized and parsed (17 µs for a
 * small input under load). Anything not plain JSON falls back to structuredClone.
 */
export function cloneJson<T> (value: T): T {
  const copy = copyJson(value)
  return (copy === NOT_JSON ? structuredClone(value) : copy) as T
}
