/** The JSON-RPC endpoint of the A2A door, named by the agent card. */
export const A2A_PATH = '/a2a'

/** Where A2A clients look for the agent card (A2A 0.3 and 1.0). */
export const AGENT_CARD_PATH = '/.well-known/agent-card.json'

/** The card's path before A2A 0.3, still asked for by older clients. */
export const OLD_AGENT_CARD_PATH = '/.well-known/agent.json'

/** The capability that takes a plain text message (one that names no skill). */
export const AGENT_CAPABILITY = 'agent'

/** The message metadata key that names the skill (the mesh capability) to run. */
export const SKILL_KEY = 'skill'

/** The key under which a task's metadata carries the mesh's own view of it. */
export const MESH_META_KEY = 'agentmesh'

/**
 * How long a blocking `message/send` waits for the task to finish before it answers with the
 * task as it stands (the client then polls `tasks/get`).
 * @default 60_000
 */
export const DEFAULT_SEND_WAIT_MS = 60_000

/**
 * Each attempt's timeout, for a message's task (its timeoutMs), as the OpenAI and MCP doors': with
 * the API's default (60 s) a skill that runs longer was aborted and run again from the start.
 * @default 300_000
 */
export const DEFAULT_A2A_ATTEMPT_TIMEOUT_MS = 300_000

/**
 * How often a stream (`message/stream`, `tasks/resubscribe`) reads the task's state from its
 * placement, at most; a final state wakes it at once.
 * @default 500
 */
export const DEFAULT_STATUS_POLL_MS = 500

/**
 * How many bytes of the messages that started tasks a node keeps, newest first, to answer their
 * `history` (tasks/get on the node that took the message).
 * @default 8_388_608 (8 MiB)
 */
export const DEFAULT_HISTORY_BYTES = 8 * 1024 * 1024

/** The longest messageId and contextId taken: both ride in the mesh task's idempotency key (256 chars). */
export const MAX_ID_CHARS = 100

/** The idempotency key prefix of tasks submitted through A2A. */
export const KEY_PREFIX = 'a2a:'

/** the media types of a skill's input modes: a text part, a data part */
export const TEXT_MODE = 'text/plain'
export const JSON_MODE = 'application/json'
