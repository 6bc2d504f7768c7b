/**
 * Records: `/agentmesh/records/1.0.0`, how task records and results reach and leave a replica.
 * `put` merges a record in and answers once it is on disk; `get` returns the replica's copy and
 * result; `pending` lists tasks the replica would lease now (the pull path that covers lost gossip).
 * Records merge commutatively, so puts may repeat and arrive in any order. `notify` and `progress`
 * go straight to a task's submitter: hints (a completion, a streamed token) that never write a record.
 */
export { recordsHandler } from './handler.js'
export * from './messages.js'
