import { z } from 'zod'
import { UnrecoverableTaskError } from './agent.js'
import type { Agent, AgentContext } from './agent.js'
import { MAX_INPUT_SCHEMA_DEPTH, inputSchemaSchema } from '../../protocols/gossip/index.js'
import type { CapabilityInfo } from '../../protocols/gossip/index.js'

export class InvalidAgentError extends Error {
  static override name = 'InvalidAgentError'
  constructor (message: string) { super(message); this.name = 'InvalidAgentError' }
}

export interface Slot {
  agent: Agent
  release: () => void
}

const capabilityName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)

/**
 * The agents a node runs, and their slots: an agent runs at most `concurrency` tasks at once, and
 * the node claims a task only when it holds a slot for it.
 */
export class AgentRuntime {
  private readonly byCapability = new Map<string, Agent>()
  private readonly infos = new Map<string, CapabilityInfo>()
  private readonly running = new Map<Agent, number>()
  /** each agent's slots: its own concurrency, or the override of its name */
  private readonly slots = new Map<Agent, number>()
  /** called after any slot is given back, run or not */
  onSlotReleased?: () => void
  /** while it answers true (the node's store failed a write), no slot is free: the node claims and runs nothing */
  refusesWork?: () => boolean

  /** `concurrency`: slots by agent name, over the agents' own (the agent objects are left as they are: a module's may be class instances) */
  constructor (agents: Agent[], private readonly concurrencyOf: Record<string, number> = {}) {
    for (const agent of agents) this.add(agent)
  }

  add (agent: Agent): void {
    if (typeof agent?.name !== 'string' || typeof agent.run !== 'function' || !Array.isArray(agent.capabilities)) {
      throw new InvalidAgentError(`an agent needs {name, capabilities, run}; got ${JSON.stringify(Object.keys(agent ?? {}))}`)
    }
    const concurrency = Object.hasOwn(this.concurrencyOf, agent.name) ? this.concurrencyOf[agent.name] : agent.concurrency ?? 1
    if (!Number.isInteger(concurrency) || concurrency === undefined || concurrency < 1) throw new InvalidAgentError(`agent ${agent.name}: concurrency must be a positive integer`)
    for (const cap of agent.capabilities) {
      const info: CapabilityInfo = typeof cap === 'string' ? { name: cap } : cap
      if (!capabilityName.safeParse(info.name).success) throw new InvalidAgentError(`agent ${agent.name}: invalid capability name "${String(info.name)}"`)
      if (this.byCapability.has(info.name)) throw new InvalidAgentError(`capability ${info.name} is offered by two agents (${this.byCapability.get(info.name)?.name}, ${agent.name})`)
      this.byCapability.set(info.name, agent)
      if (info.inputSchema === undefined && agent.inputSchema !== undefined) {
        // what a caller sends (the input side of a transform), so "a string or {text}" is published,
        // not dropped as unrepresentable; a schema zod cannot write at all leaves the input unchecked
        try { info.inputSchema = z.toJSONSchema(agent.inputSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown> } catch {}
      }
      // peers refuse a presence whose schema is too deep: the agent would be offered to no one
      if (info.inputSchema !== undefined && !inputSchemaSchema.safeParse(info.inputSchema).success) {
        throw new InvalidAgentError(`agent ${agent.name}: the input schema of ${info.name} is not a JSON object at most ${MAX_INPUT_SCHEMA_DEPTH} levels deep`)
      }
      this.infos.set(info.name, info)
    }
    this.running.set(agent, 0)
    this.slots.set(agent, concurrency)
  }

  capabilities (): CapabilityInfo[] {
    return [...this.infos.values()]
  }

  canRun (capability: string): boolean {
    return this.byCapability.has(capability)
  }

  freeSlots (): Record<string, number> {
    const refusing = this.refusesWork?.() === true
    const out: Record<string, number> = {}
    for (const [cap, agent] of this.byCapability) out[cap] = refusing ? 0 : this.slotsOf(agent) - (this.running.get(agent) ?? 0)
    return out
  }

  /** How many tasks of `capability` its agent runs at once; 0 for one this node does not run. */
  concurrency (capability: string): number {
    const agent = this.byCapability.get(capability)
    return agent === undefined ? 0 : this.slotsOf(agent)
  }

  private slotsOf (agent: Agent): number {
    return this.slots.get(agent) ?? 1
  }

  busySlots (): number {
    let n = 0
    for (const count of this.running.values()) n += count
    return n
  }

  /** A slot for the capability's agent, or undefined when all are busy. */
  reserve (capability: string): Slot | undefined {
    const agent = this.byCapability.get(capability)
    if (agent === undefined || this.refusesWork?.() === true) return undefined
    const used = this.running.get(agent) ?? 0
    if (used >= this.slotsOf(agent)) return undefined
    this.running.set(agent, used + 1)
    let released = false
    return {
      agent,
      release: () => {
        if (released) return
        released = true
        this.running.set(agent, (this.running.get(agent) ?? 1) - 1)
        this.onSlotReleased?.()
      }
    }
  }

  /** Runs the agent; an input that fails its schema is unrecoverable. */
  async run (agent: Agent, ctx: AgentContext): Promise<unknown> {
    if (agent.inputSchema !== undefined) {
      const parsed = agent.inputSchema.safeParse(ctx.input)
      if (!parsed.success) throw new UnrecoverableTaskError(`invalid input for ${ctx.task.capability}: ${parsed.error.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
      ctx = { ...ctx, input: parsed.data }
    }
    ctx.signal.throwIfAborted()
    return agent.run(ctx)
  }
}
