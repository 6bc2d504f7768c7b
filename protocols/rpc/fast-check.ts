import type { ZodType } from 'zod'

/*
 * A check compiled from a zod schema that says, in one walk and without copying, that a value is
 * already what the schema's parse would return: every field of the right type and within its
 * limits, no key the schema would refuse or strip, no default to fill. It never refuses: false
 * means "not sure", and the caller parses with zod, whose answer (and error message) stands. Under
 * load zod's parse of the lease and records requests was a tenth of a daemon's CPU and the largest
 * share of what it allocated: it copies every object and array it passes.
 *
 * Sound by construction for what it knows (objects, strings with length and regex checks, numbers
 * with int and range checks, booleans, literals, enums, arrays, records, optionals, custom checks
 * and discriminated unions); anything else compiles to "not sure". test/protocols/fast-check.test.ts
 * holds it to zod over mutated requests.
 */

type Check = (value: unknown) => boolean

const NOT_SURE: Check = () => false
const compiled = new WeakMap<object, Check>()

/** The fast check of `schema`, compiled once. */
export function fastCheck (schema: ZodType): Check {
  let check = compiled.get(schema)
  if (check === undefined) {
    // a recursive schema meets itself while compiling: not sure there
    compiled.set(schema, NOT_SURE)
    check = compile(schema)
    compiled.set(schema, check)
  }
  return check
}

/** zod's safeParse, after the fast check: a value it passes is the data itself. */
export function fastParse<T> (schema: ZodType<T>, value: unknown): { success: true, data: T } | ReturnType<ZodType<T>['safeParse']> {
  return fastCheck(schema)(value) ? { success: true, data: value as T } : schema.safeParse(value)
}

interface Def {
  type: string
  checks?: Array<{ _zod: { def: CheckDef } }>
  [key: string]: any
}

interface CheckDef {
  check: string
  [key: string]: any
}

function compile (schema: ZodType): Check {
  const def = (schema as any)._zod?.def as Def | undefined
  if (def === undefined) return NOT_SURE
  const checks = (def.checks ?? []).map(c => c._zod.def)
  // a format schema (z.int(), z.email()) is its own check, on the def itself
  const ownCheck = def.check !== undefined || def.format !== undefined
  switch (def.type) {
    case 'string': return ownCheck ? NOT_SURE : stringCheck(checks)
    case 'number': return ownCheck ? NOT_SURE : numberCheck(checks)
    case 'boolean': return checks.length === 0 ? v => typeof v === 'boolean' : NOT_SURE
    case 'literal': {
      const values: unknown[] = def.values
      return checks.length === 0 ? v => values.includes(v) : NOT_SURE
    }
    case 'enum': {
      const values = new Set<unknown>(Object.values(def.entries as Record<string, unknown>))
      // a numeric enum's entries hold its reverse names too
      return checks.length === 0 && [...values].every(v => typeof v === 'string') ? v => values.has(v) : NOT_SURE
    }
    case 'optional': {
      const inner = fastCheck(def.innerType)
      return checks.length === 0 ? v => v === undefined || inner(v) : NOT_SURE
    }
    // true itself: a promise (an async check) is truthy, and zod refuses it
    case 'custom': return checks.length === 0 && typeof def.fn === 'function' ? v => def.fn(v) === true : NOT_SURE
    case 'array': return arrayCheck(def, checks)
    case 'object': return checks.length === 0 ? objectCheck(def) : NOT_SURE
    case 'record': return checks.length === 0 ? recordCheck(def) : NOT_SURE
    case 'union': return checks.length === 0 && typeof def.discriminator === 'string' ? discriminatedCheck(def) : NOT_SURE
    default: return NOT_SURE
  }
}

/** Whether every check passes `v`: a loop, where `every` made a closure on each call of a hot check. */
function all (checks: Check[], v: unknown): boolean {
  for (let i = 0; i < checks.length; i++) if (!(checks[i] as Check)(v)) return false
  return true
}

function stringCheck (checks: CheckDef[]): Check {
  const parts: Check[] = []
  for (const c of checks) {
    if (c.check === 'min_length' && typeof c.minimum === 'number') {
      const min: number = c.minimum
      parts.push(v => codePoints(v as string, min) >= min)
    } else if (c.check === 'max_length' && typeof c.maximum === 'number') {
      const max: number = c.maximum
      // zod counts code points; a string of no more code units than that is short enough either way
      parts.push(v => (v as string).length <= max)
    } else if (c.check === 'string_format' && c.format === 'regex' && c.pattern instanceof RegExp) {
      const pattern: RegExp = c.pattern
      parts.push(v => { pattern.lastIndex = 0; return pattern.test(v as string) })
    } else {
      return NOT_SURE
    }
  }
  return v => typeof v === 'string' && all(parts, v)
}

/** Code points of `s`, as zod counts them for a minimum length; exact only up to `atLeast` (past it, the code units). */
function codePoints (s: string, atLeast: number): number {
  if (s.length >= atLeast * 2) return s.length
  let count = s.length
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--
      i++
    }
  }
  return count
}

function numberCheck (checks: CheckDef[]): Check {
  const parts: Check[] = []
  for (const c of checks) {
    if (c.check === 'number_format' && c.format === 'safeint') parts.push(v => Number.isSafeInteger(v))
    else if (c.check === 'greater_than' && typeof c.value === 'number') {
      const bound: number = c.value
      parts.push(c.inclusive === true ? v => (v as number) >= bound : v => (v as number) > bound)
    } else if (c.check === 'less_than' && typeof c.value === 'number') {
      const bound: number = c.value
      parts.push(c.inclusive === true ? v => (v as number) <= bound : v => (v as number) < bound)
    } else {
      return NOT_SURE
    }
  }
  return v => typeof v === 'number' && Number.isFinite(v) && all(parts, v)
}

function arrayCheck (def: Def, checks: CheckDef[]): Check {
  let min = 0
  let max = Infinity
  for (const c of checks) {
    if (c.check === 'min_length' && typeof c.minimum === 'number') min = Math.max(min, c.minimum)
    else if (c.check === 'max_length' && typeof c.maximum === 'number') max = Math.min(max, c.maximum)
    else return NOT_SURE
  }
  const element = fastCheck(def.element)
  return v => {
    if (!Array.isArray(v) || v.length < min || v.length > max) return false
    for (let i = 0; i < v.length; i++) if (!element(v[i])) return false
    return true
  }
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

function objectCheck (def: Def): Check {
  // a catchall other than never (refuse) or none (strip) lets unknown keys through: not sure
  const catchall = def.catchall?._zod?.def?.type
  if (catchall !== undefined && catchall !== 'never') return NOT_SURE
  const shape = def.shape as Record<string, ZodType>
  // zod looks a key up with `in`: a missing toString finds Object.prototype's
  if (Object.keys(shape).some(key => key in Object.prototype)) return NOT_SURE
  // optional both ways: a missing key that a transform or default would fill is not left out
  const fields = Object.keys(shape).map(key => ({ key, check: fastCheck(shape[key] as ZodType), optional: (shape[key] as any)._zod.optin === 'optional' && (shape[key] as any)._zod.optout === 'optional' }))
  const known = new Set(fields.map(f => f.key))
  return v => {
    if (!isPlainObject(v)) return false
    // a key zod would refuse or strip, or an own member left undefined (zod would keep it as a key)
    for (const key in v) if (!known.has(key) || v[key] === undefined || !Object.hasOwn(v, key)) return false
    for (const f of fields) {
      if (!Object.hasOwn(v, f.key)) {
        if (!f.optional) return false
        continue
      }
      if (!f.check(v[f.key])) return false
    }
    return true
  }
}

function recordCheck (def: Def): Check {
  // keys of an enum or literal type: zod wants every one of them
  if (def.keyType?._zod?.values !== undefined) return NOT_SURE
  const key = fastCheck(def.keyType)
  const value = fastCheck(def.valueType)
  return v => {
    if (!isPlainObject(v)) return false
    for (const k of Object.keys(v)) if (k === '__proto__' || !key(k) || !value(v[k])) return false
    return true
  }
}

function discriminatedCheck (def: Def): Check {
  const by = new Map<unknown, Check>()
  for (const option of def.options as ZodType[]) {
    const tag = (option as any)._zod.def.shape?.[def.discriminator]?._zod?.def
    if (tag?.type !== 'literal') return NOT_SURE
    for (const value of tag.values as unknown[]) {
      // two options for one tag: zod picks by its own rules, not sure which
      if (by.has(value)) return NOT_SURE
      by.set(value, fastCheck(option))
    }
  }
  const key: string = def.discriminator
  return v => isPlainObject(v) && (by.get(v[key]) ?? NOT_SURE)(v)
}
