import type { Message } from '@a2a-js/sdk'

/**
 * The messages that started tasks through this node, newest kept within a byte budget: a task's
 * A2A `history` on the node that took it. In memory only (a restart forgets it); another node,
 * which never saw the message, answers with none.
 */
export class MessageHistory {
  private readonly messages = new Map<string, { message: Message, bytes: number }>()
  private bytes = 0

  constructor (private readonly maxBytes: number) {}

  keep (taskId: string, message: Message): void {
    this.forget(taskId)
    const bytes = sizeOf(message)
    if (bytes > this.maxBytes) return
    this.messages.set(taskId, { message, bytes })
    this.bytes += bytes
    // a Map iterates in insertion order: the oldest go first
    for (const id of this.messages.keys()) {
      if (this.bytes <= this.maxBytes) break
      this.forget(id)
    }
  }

  /** The task's history: its first message, when this node still has it. */
  of (taskId: string): Message[] {
    const kept = this.messages.get(taskId)
    return kept === undefined ? [] : [kept.message]
  }

  private forget (taskId: string): void {
    const kept = this.messages.get(taskId)
    if (kept === undefined) return
    this.messages.delete(taskId)
    this.bytes -= kept.bytes
  }
}

function sizeOf (message: Message): number {
  try {
    return Buffer.byteLength(JSON.stringify(message) ?? '')
  } catch {
    // not JSON (a cycle, a bigint): not kept
    return Infinity
  }
}
