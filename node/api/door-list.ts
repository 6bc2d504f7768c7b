import { createA2ADoor } from '../../protocols/a2a/door.js'
import { mcpDoor } from './mcp-door.js'
import { openaiDoor } from './openai-door.js'
import { VERSION } from '../version.js'
import type { Door } from './doors.js'

/** The A2A door; its counters (`a2aDoor.stats`) are for /v1/metrics. */
export const a2aDoor = createA2ADoor({ version: VERSION })

/** The protocol doors every node serves next to its own API. */
export const DOORS: Door[] = [mcpDoor, a2aDoor, openaiDoor]

/** The doors' own counters, for GET /v1/metrics (summed over the API servers of this process). */
export function doorStats (): Record<string, unknown> {
  return { openai: openaiDoor.stats(), a2a: { ...a2aDoor.stats } }
}
