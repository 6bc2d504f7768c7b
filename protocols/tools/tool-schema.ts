import { z } from 'zod'

/**
 * A capability's input as a tool's parameters. OpenAI (and MCP's `inputSchema`) require a JSON
 * Schema of type object; many capabilities take "a string or {text}" or any JSON. Those are wrapped
 * as `{input: <schema>}` and the model's arguments unwrapped before the task is submitted.
 */
export interface ToolSchema {
  /** always `type: object` */
  parameters: Record<string, unknown>
  /** true when the capability's input is the `input` property of the arguments */
  wrapped: boolean
}

/** The property a wrapped capability input travels in. */
export const WRAPPED_INPUT = 'input'

/**
 * An object schema that also needs one of `keys` (`prompt` or `messages`), as JSON Schema says it:
 * `anyOf` of branches that only list what is required. An agent's zod refine of that kind is lost
 * in its published schema, and a door took an input that could only die at run time.
 */
export function withOneOfKeys (schema: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return { ...schema, anyOf: keys.map(k => ({ required: [k] })) }
}

/** A zod refine's check of the same: `value` gives one of `keys`. */
export function givesOneOf (keys: readonly string[]): (value: Record<string, unknown>) => boolean {
  return value => keys.some(k => value[k] !== undefined)
}

/** The input schema an agent publishes for a zod schema refined by givesOneOf(keys): zod's writing drops the refine. */
export function publishedWithOneOf (schema: z.ZodType, keys: readonly string[]): Record<string, unknown> {
  return withOneOfKeys(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>, keys)
}

/** The keys of withOneOfKeys's `anyOf`, or undefined when the schema has no such one. */
function oneOfKeys (schema: Record<string, unknown>): string[] | undefined {
  const branches = schema.anyOf
  if (!Array.isArray(branches) || branches.length === 0) return undefined
  const keys: string[] = []
  for (const b of branches) {
    if (b === null || typeof b !== 'object' || Object.keys(b).length !== 1) return undefined
    const required = (b as { required?: unknown }).required
    if (!Array.isArray(required) || required.length !== 1 || typeof required[0] !== 'string') return undefined
    keys.push(required[0])
  }
  return keys
}

/** Whether a JSON Schema says "an object" and only that, as the tool APIs want at the top. */
export function isObjectSchema (schema: Record<string, unknown> | undefined): boolean {
  if (schema === undefined) return false
  if (schema.type !== 'object') return false
  // a union at the top (anyOf: [string, object]) is not an object schema even if it also says type;
  // one that only asks for one of some keys is
  return (schema.anyOf === undefined || oneOfKeys(schema) !== undefined) && schema.oneOf === undefined && schema.allOf === undefined
}

export function toolSchema (inputSchema: Record<string, unknown> | undefined): ToolSchema {
  if (inputSchema !== undefined && isObjectSchema(inputSchema)) {
    // $schema is noise to a model, and some providers refuse unknown top-level keywords, or a
    // top-level anyOf: the door checks one-of-keys itself (inputProblem)
    const { $schema: _s, ...parameters } = inputSchema
    if (oneOfKeys(parameters) !== undefined) delete parameters.anyOf
    return { parameters, wrapped: false }
  }
  const { $schema: _s, ...inner } = inputSchema ?? {}
  const property = Object.keys(inner).length === 0 ? { description: 'any JSON value' } : inner
  return {
    parameters: { type: 'object', properties: { [WRAPPED_INPUT]: property }, required: [WRAPPED_INPUT], additionalProperties: false },
    wrapped: true
  }
}

/** The capability input from a tool call's arguments (already parsed JSON). */
export function toolInput (args: unknown, wrapped: boolean): unknown {
  if (!wrapped) return args ?? {}
  if (args !== null && typeof args === 'object' && !Array.isArray(args) && WRAPPED_INPUT in args) return (args as Record<string, unknown>)[WRAPPED_INPUT]
  // a model that ignored the wrapper and sent the value itself: take it as the input
  return args
}

/** Validators made from capabilities' published schemas, by the schema's JSON; null for one zod cannot read. */
const validators = new Map<string, z.ZodType | null>()
/** Schemas kept at most: a mesh offers tens of capabilities, not thousands. */
const MAX_VALIDATORS = 256
/** The same, by the schema object a peer's presence holds: a submit's check then writes no JSON */
const validatorsByObject = new WeakMap<object, z.ZodType | null>()

/**
 * What is wrong with `input` by a capability's published JSON Schema (`path: message; ...`), or
 * undefined when nothing is, when there is no schema, or when the schema is one zod cannot read (the
 * agent checks its own input anyway). A door checks a call's arguments with it before it makes a
 * task, which would otherwise only die of them.
 */
export function inputProblem (schema: Record<string, unknown> | undefined, input: unknown): string | undefined {
  if (schema === undefined) return undefined
  const either = oneOfKeys(schema)
  if (either !== undefined && input !== null && typeof input === 'object' && !Array.isArray(input) && !givesOneOf(either)(input as Record<string, unknown>)) return `(root): give ${either.join(' or ')}`
  let validator = validatorsByObject.get(schema)
  if (validator === undefined) {
    validator = validatorByText(schema)
    validatorsByObject.set(schema, validator)
  }
  if (validator === null) return undefined
  const parsed = validator.safeParse(input)
  if (parsed.success) return undefined
  return parsed.error.issues.slice(0, 3).map(describeIssue).join('; ')
}

/** A schema's validator by its JSON text (null: one zod cannot build), built once for equal schemas of different peers. */
function validatorByText (schema: Record<string, unknown>): z.ZodType | null {
  const key = JSON.stringify(schema)
  let validator = validators.get(key)
  if (validator !== undefined) return validator
  // one-of-keys is checked apart (inputProblem): zod reads such an anyOf as "anything"
  const { anyOf: _either, ...rest } = schema
  try {
    validator = z.fromJSONSchema((oneOfKeys(schema) === undefined ? schema : rest) as Parameters<typeof z.fromJSONSchema>[0])
  } catch {
    validator = null
  }
  if (validators.size >= MAX_VALIDATORS) validators.clear()
  validators.set(key, validator)
  return validator
}

/** One issue as a line: where, and what. A value of a union says what each of its forms wanted, where zod says only "Invalid input". */
function describeIssue (issue: z.core.$ZodIssue): string {
  const where = issue.path.map(String).join('.') || '(root)'
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return `${where}: ${issue.message}`
  const forms = issue.errors.slice(0, 4).map(branch => {
    const first = branch[0]
    if (first === undefined) return 'another form'
    const inner = first.path.map(String).join('.')
    return inner === '' ? first.message : `${inner}: ${first.message}`
  })
  return `${where}: fits none of the ${issue.errors.length} forms it may take (${forms.join('; or ')})`
}
