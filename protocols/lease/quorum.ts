/**
 * Calls every peer at once. `early` resolves as soon as `need` results pass `ok`, or once that can
 * no longer happen; `all` resolves with every result. A paused or cut-off member then delays a
 * majority operation by nothing, instead of by its RPC timeout. `call` must not throw.
 */
export function untilQuorum<T> (peers: readonly string[], call: (peer: string) => Promise<T>, need: number, ok: (result: T) => boolean): { early: Promise<Array<{ peer: string, result: T }>>, all: Promise<Array<{ peer: string, result: T }>> } {
  const got: Array<{ peer: string, result: T }> = []
  let passed = 0
  let settle!: (results: Array<{ peer: string, result: T }>) => void
  const early = new Promise<Array<{ peer: string, result: T }>>(resolve => { settle = resolve })
  const check = (): void => {
    if (passed >= need || passed + (peers.length - got.length) < need) settle([...got])
  }
  check()
  const all = Promise.all(peers.map(async peer => {
    const entry = { peer, result: await call(peer) }
    got.push(entry)
    if (ok(entry.result)) passed++
    check()
    return entry
  }))
  return { early, all }
}
