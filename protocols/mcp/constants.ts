/** Where every daemon serves MCP (Streamable HTTP). */
export const MCP_PATH = '/mcp'

/**
 * While a tool call's task runs, a progress notification goes out at least this often (when the
 * client asked for progress), and the task's state is read again.
 * @default 2_000
 */
export const DEFAULT_PROGRESS_INTERVAL_MS = 2_000

/**
 * The longest a tool call waits for its task; past it the call answers with an error naming the
 * task, which keeps running and can be read later (GET /v1/tasks/:id/result).
 * @default 600_000 (10 minutes)
 */
export const DEFAULT_MAX_CALL_MS = 600_000

/**
 * Each attempt's timeout, for a tool call's task (its timeoutMs), as the OpenAI door's: a call may
 * wait up to DEFAULT_MAX_CALL_MS, and a task with the API's default (60 s) was aborted and run
 * again from the start every minute, never finishing a longer tool.
 * @default 300_000 (5 minutes)
 */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 300_000

/** The key of a tool result's `_meta` that names the mesh task it ran as. */
export const TASK_META_KEY = 'agentmesh/task'
