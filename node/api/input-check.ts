import { inputProblem } from '../../protocols/tools/tool-schema.js'
import type { PeerPresence } from '../../protocols/presence/index.js'

/**
 * Why `input` fits no schema a live peer gives for `capability` (the first problem found), or
 * undefined when one takes it, one peer names no schema, or none offers it. The API checks this
 * before a task is made, as the MCP and A2A doors do: such a task was stored, offered and run only
 * to die of "invalid input". Peers of other versions may differ: one that takes it is enough.
 */
export function inputRefusal (live: readonly PeerPresence[], capability: string, input: unknown): string | undefined {
  let problem: string | undefined
  for (const peer of live) {
    for (const cap of peer.capabilities) {
      if (cap.name !== capability) continue
      if (cap.inputSchema === undefined) return undefined
      const found = inputProblem(cap.inputSchema, input)
      if (found === undefined) return undefined
      problem ??= found
    }
  }
  return problem
}
