import { createHash } from 'node:crypto'
import { verifyBy } from './ed25519.js'
import { beforeTurnWrites } from '../end-of-turn.js'

/*
 * Votes signed in batches. A member signs every vote it cast in one turn of the event loop with one
 * Ed25519 signature over the root of a Merkle tree of their statements; each vote carries that
 * signature, its place in the tree and the hashes that lead from its statement to the root. An
 * Ed25519 signature costs about 40 µs here and was the largest single item of a loaded mesh's CPU
 * (three a task); the tree costs about two SHA-256 a vote. A turn with one vote signs its
 * statement itself, as every vote was signed before, so a mesh at low load sends what it sent.
 *
 * The encoded signature: `b1.<count>.<index>.<signature>.<sibling>...`, base64, siblings from the
 * leaf up. The signed message binds the count, so a proof cannot be replayed in a tree of another
 * shape; leaves and inner nodes hash with different prefixes (RFC 6962), so no inner node passes
 * for a statement.
 */

const PREFIX = 'b1.'
const ROOT_DOMAIN = 'agentmesh/final-batch/1\n'
/** the most votes one signature covers; more in one turn make several batches */
export const MAX_SIGN_BATCH = 64
/**
 * the votes of a turn one signature covers by default (the task option `voteSignBatchMax`): 1, each
 * signed alone. A batched vote's reply waits for the end of its turn, and where one turn holds many
 * nodes' work (the simulator's 50 nodes in one process, overloaded) that wait tipped claims into
 * contention in about half the runs; a daemon's turn holds its own work only (see the README)
 */
export const DEFAULT_VOTE_SIGN_BATCH_MAX = 1
/** the longest signature string a vote may carry: a batch of MAX_SIGN_BATCH, with room to spare */
export const MAX_SIGNATURE_CHARS = 512

const leafHash = (statement: Uint8Array): Buffer => createHash('sha256').update(LEAF).update(statement).digest()
const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer => createHash('sha256').update(NODE).update(left).update(right).digest()
const LEAF = Buffer.from([0])
const NODE = Buffer.from([1])

function rootMessage (count: number, root: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(`${ROOT_DOMAIN}${count}\n`), root])
}

/** Each level of the tree, leaves first; an odd last node goes up a level unpaired. */
function levels (leaves: Buffer[]): Buffer[][] {
  const out = [leaves]
  let level = leaves
  while (level.length > 1) {
    const up: Buffer[] = []
    for (let i = 0; i < level.length; i += 2) up.push(i + 1 < level.length ? nodeHash(level[i] as Buffer, level[i + 1] as Buffer) : level[i] as Buffer)
    out.push(up)
    level = up
  }
  return out
}

function proofOf (tree: Buffer[][], index: number): Buffer[] {
  const proof: Buffer[] = []
  for (let d = 0, i = index; d < tree.length - 1; d++, i >>= 1) {
    const level = tree[d] as Buffer[]
    const sibling = i % 2 === 1 ? level[i - 1] : level[i + 1]
    if (sibling !== undefined) proof.push(sibling)
  }
  return proof
}

/** The root a proof leads to from `statement`, or undefined when the proof does not fit the shape. */
function rootOf (statement: Uint8Array, count: number, index: number, proof: Buffer[]): Buffer | undefined {
  let hash = leafHash(statement)
  let used = 0
  for (let i = index, n = count; n > 1; i >>= 1, n = Math.ceil(n / 2)) {
    if (i % 2 === 1) hash = nodeHash(proof[used++] ?? EMPTY, hash)
    else if (i + 1 < n) hash = nodeHash(hash, proof[used++] ?? EMPTY)
    if (used > proof.length) return undefined
  }
  return used === proof.length ? hash : undefined
}
const EMPTY = Buffer.alloc(0)

/** Signs `statements` with one signature (one alone: its own plain signature), encoded for each. */
export async function signBatch (statements: Uint8Array[], sign: (message: Uint8Array) => Promise<Uint8Array> | Uint8Array): Promise<string[]> {
  if (statements.length === 1) return [Buffer.from(await sign(statements[0] as Uint8Array)).toString('base64')]
  const tree = levels(statements.map(leafHash))
  const root = (tree[tree.length - 1] as Buffer[])[0] as Buffer
  const sig = Buffer.from(await sign(rootMessage(statements.length, root))).toString('base64')
  return statements.map((_, i) => [`${PREFIX}${statements.length}`, i, sig, ...proofOf(tree, i).map(h => h.toString('base64'))].join('.'))
}

/** Roots checked good, by signer and signature: the other votes of a batch cost no check. */
const goodRoots = new Set<string>()
const MAX_GOOD_ROOTS = 10_000

/** Whether `peer` signed `statement`, by a plain signature or a batch's; false for anything malformed. */
export function verifySignature (peer: string, statement: Uint8Array, sig: string): boolean {
  if (!sig.startsWith(PREFIX)) return SIGNATURE.test(sig) && verifyBy(peer, statement, Buffer.from(sig, 'base64'))
  const parts = sig.slice(PREFIX.length).split('.')
  const count = wholeNumber(parts[0])
  const index = wholeNumber(parts[1])
  const signature = parts[2]
  if (count === undefined || index === undefined || signature === undefined || !SIGNATURE.test(signature) || count < 2 || count > MAX_SIGN_BATCH || index >= count) return false
  const hashes = parts.slice(3)
  if (!hashes.every(h => HASH.test(h))) return false
  const proof = hashes.map(h => Buffer.from(h, 'base64'))
  const root = rootOf(statement, count, index, proof)
  if (root === undefined) return false
  const key = `${peer}\n${count}\n${signature}\n${root.toString('base64')}`
  if (goodRoots.has(key)) return true
  if (!verifyBy(peer, rootMessage(count, root), Buffer.from(signature, 'base64'))) return false
  if (goodRoots.size >= MAX_GOOD_ROOTS) goodRoots.clear()
  goodRoots.add(key)
  return true
}

/*
 * Base64 as Buffer.toString writes it, nothing else: Buffer.from skips characters it does not know
 * and takes missing padding, so one signature had many spellings, each missing the caches.
 */
const SIGNATURE = /^[A-Za-z0-9+/]{86}==$/
const HASH = /^[A-Za-z0-9+/]{43}=$/

const wholeNumber = (s: string | undefined): number | undefined => s !== undefined && /^(0|[1-9][0-9]{0,3})$/.test(s) ? Number(s) : undefined

/**
 * Collects the statements to sign in one turn of the event loop and signs them at its end, up to
 * `maxBatch` a signature, just before the turn's writes (end-of-turn.ts): a lone vote reaches the
 * disk in the turn it would have reached it signed at once.
 */
export class BatchSigner {
  private queue: Array<{ statement: Uint8Array, resolve: (sig: string) => void, reject: (err: unknown) => void }> = []

  private readonly maxBatch: number

  /** `signed`: told of each signature made, for the node's counters */
  constructor (private readonly sign: (message: Uint8Array) => Promise<Uint8Array> | Uint8Array, maxBatch: number, private readonly signed: () => void = () => {}) {
    this.maxBatch = Number.isFinite(maxBatch) ? Math.max(1, Math.min(MAX_SIGN_BATCH, Math.floor(maxBatch))) : DEFAULT_VOTE_SIGN_BATCH_MAX
  }

  async signStatement (statement: Uint8Array): Promise<string> {
    if (this.maxBatch <= 1) return (await this.signNow([statement]))[0] as string
    return await new Promise((resolve, reject) => {
      this.queue.push({ statement, resolve, reject })
      if (this.queue.length === 1) beforeTurnWrites(() => { void this.flush() })
    })
  }

  private async signNow (statements: Uint8Array[]): Promise<string[]> {
    const sigs = await signBatch(statements, this.sign)
    this.signed()
    return sigs
  }

  private async flush (): Promise<void> {
    const all = this.queue
    this.queue = []
    for (let i = 0; i < all.length; i += this.maxBatch) {
      const batch = all.slice(i, i + this.maxBatch)
      try {
        const sigs = await this.signNow(batch.map(b => b.statement))
        batch.forEach((b, j) => { b.resolve(sigs[j] as string) })
      } catch (err) {
        for (const b of batch) b.reject(err)
      }
    }
  }
}
