/**
 * MCP server: the mesh's live capabilities as MCP tools. Every daemon serves it at /mcp
 * (Streamable HTTP, stateless), and `agentmesh mcp --api URL` serves it over stdio for desktop
 * clients. A tool call is a mesh task submitted from the node that took the call: it runs on
 * whichever peer claims it, the call waits for its certified result and reports progress while it
 * runs. A capability whose input is not a JSON object is served with its input wrapped as
 * `{input}` (MCP wants an object schema). It does not promise: a tool list that updates itself
 * (clients list again), resumable streams, or a result once the call gave up (the task carries on;
 * its id is in the error and in every result's `_meta`).
 */
export { MCP_PATH, DEFAULT_MAX_CALL_MS, DEFAULT_PROGRESS_INTERVAL_MS, TASK_META_KEY } from './constants.js'
export { connectMcpServer, createMcpServer, malformedRequest } from './server.js'
export type { MeshBackend, McpServerInit } from './server.js'
export { meshTools, toolResult, toolError } from './tools.js'
export type { MeshTool, TaskOutcome } from './tools.js'
