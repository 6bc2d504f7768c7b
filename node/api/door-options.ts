import { z } from 'zod'
import { optionalTimerMs as ms } from '../tasks/options.js'
import { MAX_TASK_TIMEOUT_MS } from '../../protocols/task/schema.js'

/* schemas only (zod, and the task options' timer bound): the daemon's config schema, which client commands load too, reads it without the network stack */


const openaiFields = z.object({
  /** how long a chat completion waits for its task before the answer is a timeout error. @default 600_000 */
  requestTimeoutMs: ms(1_000),
  /** each attempt's timeout, for the task (its timeoutMs, at most 7 days). @default 300_000 */
  attemptTimeoutMs: ms(1_000, MAX_TASK_TIMEOUT_MS),
  /** how often a streamed completion sends a keep-alive comment while it waits. @default 15_000 */
  keepaliveMs: ms(1_000, 600_000),
  /** how long a streamed completion holds back its head for the first token (a task that fails before is answered with its status). @default 2_000 */
  streamHoldMs: ms(0, 600_000)
}).strict()

const mcpFields = z.object({
  /** how long a tools/call waits for its task before it answers that the task carries on. @default 600_000 */
  maxCallMs: ms(1_000),
  /** each attempt's timeout, for a tool call's task (its timeoutMs, at most 7 days). @default 300_000 */
  attemptTimeoutMs: ms(1_000, MAX_TASK_TIMEOUT_MS),
  /** how often an open tools/call sends a progress notification and reads its task. @default 2_000 */
  progressIntervalMs: ms(100, 600_000)
}).strict()

const a2aFields = z.object({
  /** how long a blocking message/send waits for its task. @default 60_000 */
  sendWaitMs: ms(0),
  /** how often a stream reads its task's state, at most. @default 500 */
  statusPollMs: ms(50, 600_000),
  /** each attempt's timeout, for a message's task (its timeoutMs, at most 7 days). @default 300_000 */
  attemptTimeoutMs: ms(1_000, MAX_TASK_TIMEOUT_MS),
  /** bytes of the messages that started tasks kept, newest first, for their history on this node. @default 8_388_608 */
  historyBytes: z.number().int().min(0).max(1024 ** 3).optional()
}).strict()

/** each door's keys */
export const DOOR_FIELDS = { openai: openaiFields, mcp: mcpFields, a2a: a2aFields }

/** The protocol doors' timers, settable in a daemon's config file (`doors`); each door has its defaults. */
export const doorOptionsSchema = z.object({
  openai: openaiFields.optional(),
  mcp: mcpFields.optional(),
  a2a: a2aFields.optional()
}, {
  // a door's key one level too high says which door it is of
  error: iss => iss.code === 'unrecognized_keys' ? iss.keys.map(doorOf).join('; ') : undefined
}).strict()

function doorOf (key: string): string {
  const door = Object.entries(DOOR_FIELDS).find(([, fields]) => Object.hasOwn(fields.shape, key))?.[0]
  return door === undefined ? `Unrecognized key: "${key}"` : `"${key}" is an option of the ${door} door: put it under "${door}" ({"${door}": {"${key}": ...}})`
}

export type DoorOptions = z.infer<typeof doorOptionsSchema>
