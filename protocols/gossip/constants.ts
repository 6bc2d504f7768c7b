/** Topic names: `agentmesh/<mesh>/<kind>`. */
export const tasksTopic = (mesh: string, capability: string): string => `agentmesh/${mesh}/tasks/${capability}`
export const resultsTopic = (mesh: string): string => `agentmesh/${mesh}/results`
export const presenceTopic = (mesh: string): string => `agentmesh/${mesh}/presence`
/** task state changes for whoever watches the mesh (an open GET /v1/events): joined only while someone does */
export const watchTopic = (mesh: string): string => `agentmesh/${mesh}/watch`

/** @default 1 MiB: the largest task input accepted */
export const DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
/** room for the envelope and the task's other fields around its input */
export const ENVELOPE_OVERHEAD_BYTES = 16 * 1024
