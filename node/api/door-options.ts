import { z } from 'zod'

/* zod only: the daemon's config schema, which client commands load too, reads it without the network stack */

const MAX_TIMER_MS = 2_147_483_647
const ms = (min: number, max = MAX_TIMER_MS): z.ZodOptional<z.ZodNumber> => z.number().int().min(min).max(max).optional()

/** The protocol doors' timers, settable in a daemon's config file (`doors`); each door has its defaults. */
export const doorOptionsSchema = z.object({
  openai: z.object({
    /** how long a chat completion waits for its task before the answer is a timeout error. @default 600_000 */
    requestTimeoutMs: ms(1_000),
    /** each attempt's timeout, for the task (its timeoutMs). @default 300_000 */
    attemptTimeoutMs: ms(1_000),
    /** how often a streamed completion sends a keep-alive comment while it waits. @default 15_000 */
    keepaliveMs: ms(1_000, 600_000)
  }).strict().optional(),
  mcp: z.object({
    /** how long a tools/call waits for its task before it answers that the task carries on. @default 600_000 */
    maxCallMs: ms(1_000),
    /** how often an open tools/call sends a progress notification and reads its task. @default 2_000 */
    progressIntervalMs: ms(100, 600_000)
  }).strict().optional(),
  a2a: z.object({
    /** how long a blocking message/send waits for its task. @default 60_000 */
    sendWaitMs: ms(0),
    /** how often a stream reads its task's state, at most. @default 500 */
    statusPollMs: ms(50, 600_000)
  }).strict().optional()
}).strict()

export type DoorOptions = z.infer<typeof doorOptionsSchema>
