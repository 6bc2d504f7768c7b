import type { AgentNode } from '../../node/create-node.js'
import type { LeaseRequest, LeaseResponse } from '../../protocols/lease/index.js'

/** Runs `fn` before each lease request `node` handles as a member: what it resolves with is answered instead; undefined, the request is handled. */
export function interceptLease (node: AgentNode, fn: (req: LeaseRequest) => Promise<LeaseResponse | undefined>): void {
  const replica = node.tasks!.replica
  const handle = replica.handleLease.bind(replica)
  replica.handleLease = async (from, req) => await fn(req) ?? await handle(from, req)
}
