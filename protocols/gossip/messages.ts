import { z } from 'zod'
import { isJsonValue, jsonValue } from '../task/json-value.js'
import { certificateSchema } from '../task/certificate.js'
import { placementSchema } from '../task/record.js'
import { capabilitySchema, peerIdSchema, taskIdSchema, taskSchema } from '../task/schema.js'

/** A task for capable peers: on `tasks/<capability>`, when submitted and again while unclaimed. */
export const taskAnnouncementSchema = z.object({
  kind: z.literal('task'),
  from: peerIdSchema,
  at: z.number(),
  task: taskSchema,
  /** where to ask for a lease; a forged one only leads a claimant to members that refuse */
  placement: placementSchema
}).strict()

/**
 * What happened to a task: on `results`. A hint only: it wakes waiters, who then read the
 * certified state from the placement; it never writes a record.
 */
export const taskNoticeSchema = z.object({
  kind: z.literal('notice'),
  from: peerIdSchema,
  at: z.number(),
  id: taskIdSchema,
  capability: capabilitySchema,
  /** `submitted` travels only on the watch topic */
  event: z.enum(['submitted', 'running', 'completed', 'failed', 'canceled', 'dead', 'redriven']),
  generation: z.number().int().nonnegative(),
  claimId: z.string().max(64).optional(),
  peer: peerIdSchema.optional(),
  error: z.string().max(4096).optional(),
  result: jsonValue().optional(),
  resultSize: z.number().int().nonnegative().optional(),
  /** the certificate of a final state: a receiver checks it against the placement it knows */
  cert: certificateSchema.optional()
}).strict()

/**
 * How deep a capability's input schema may nest. Tool libraries, the doors and the API's serializer
 * walk a schema by recursion: one 20,000 levels deep, gossiped by one peer, made every node's
 * `GET /v1/capabilities` overflow the stack. Real tool schemas nest a few levels.
 */
export const MAX_INPUT_SCHEMA_DEPTH = 32

export const inputSchemaSchema = z.custom<Record<string, unknown>>(
  v => v !== null && typeof v === 'object' && !Array.isArray(v) && isJsonValue(v, { maxDepth: MAX_INPUT_SCHEMA_DEPTH }),
  { error: `a JSON Schema: a plain JSON object at most ${MAX_INPUT_SCHEMA_DEPTH} levels deep` })

export const capabilityInfoSchema = z.object({
  name: capabilitySchema,
  description: z.string().max(1024).optional(),
  inputSchema: inputSchemaSchema.optional(),
  /** a tool-using agent asks a person (agentmesh approve) before each call of it */
  needsApproval: z.boolean().optional(),
  /** the model name a chat capability serves (`llm.chat.<name>`): what an OpenAI-compatible door lists */
  model: z.string().min(1).max(256).optional()
}).strict()

/** Who offers what: on `presence`, every few seconds. */
export const presenceSchema = z.object({
  kind: z.literal('presence'),
  from: peerIdSchema,
  at: z.number(),
  version: z.string().max(64),
  intervalMs: z.number().int().positive(),
  capabilities: z.array(capabilityInfoSchema).max(256),
  freeSlots: z.record(z.string(), z.number().int().nonnegative()),
  /** where to dial the sender: replicas talk directly, and the DHT may not know them yet */
  addrs: z.array(z.string().max(256)).max(16),
  /**
   * the sender is stopping: peers drop it from their live view now, not three intervals later. It
   * stays a member for placements (the membership window): a farewell changes whom a peer claims
   * for and hands tasks to, never which majorities a task needs
   */
  leaving: z.literal(true).optional()
}).strict()

export type TaskAnnouncement = z.infer<typeof taskAnnouncementSchema>
export type TaskNotice = z.infer<typeof taskNoticeSchema>
export type Presence = z.infer<typeof presenceSchema>
export type CapabilityInfo = z.infer<typeof capabilityInfoSchema>
