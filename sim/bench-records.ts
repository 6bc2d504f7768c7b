import { randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { join } from 'node:path'
import { echoAgent } from '../node/agents/basic.js'
import { Store } from '../node/store/store.js'
import { LevelReplicaStore } from '../node/store/replica-store.js'
import { makeTask, newRecord } from '../protocols/task/index.js'
import { createTestnet } from './testnet.js'
import type { AddRow } from './bench-daemons.js'
import type { LeaseState, StoredResult, TaskRecord } from '../protocols/task/index.js'

/** A full collection, where the process allows it: heap figures without it are a guess. */
function collector (): () => void {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as (() => void) | undefined
  return () => { gc?.(); gc?.() }
}

/**
 * What each record a node keeps costs it: a node restarted on a store of `counts` finished tasks
 * (one real completed task's record, lease and result, copied under new ids a second apart), timed
 * from the start of its store to a ready node, and the heap it holds for them once started. A node
 * keeps every task for `retentionMs` (a week) after it ends, and reads each of them at start.
 */
export async function benchRecords (add: AddRow, counts = [50_000, 200_000]): Promise<void> {
  const gc = collector()
  const net = await createTestnet(1, { tasks: { agents: [echoAgent] } })
  try {
    await net.ready()
    const node = net.nodes[0]
    const service = node?.tasks?.service
    if (node === undefined || service === undefined) throw new Error('a testnet node without tasks')
    const { id } = await service.submit({ capability: 'echo', input: { text: 'a small input, as most are' } })
    await service.waitFor(id, 30_000)
    // read once the node is stopped: its last writes are on disk then
    await node.stop()
    const path = join(net.baseDir, 'node-0', 'store')
    const { record, ...extra } = await readTask(path, id)
    // a started node holding one task, its start and its heap: what the figures below are counted from
    const t0 = performance.now()
    await net.restartNode(0)
    const baseMs = performance.now() - t0
    gc()
    const base = process.memoryUsage().heapUsed
    let kept = 1
    for (const count of counts) {
      await net.nodes[0]?.stop()
      await copyRecords(path, record, extra, count - kept)
      kept = count
      const t1 = performance.now()
      await net.restartNode(0)
      const ms = performance.now() - t1
      gc()
      const perRecord = (process.memoryUsage().heapUsed - base) / count
      add(`a node restarted on ${count.toLocaleString('en')} kept tasks`, `${(ms / 1000).toFixed(1)} s to start`,
        `${perRecord.toFixed(0)} bytes of heap a record (${((perRecord * count) / 2 ** 20).toFixed(0)} MiB), ${((ms - baseMs) * 1000 / count).toFixed(0)} µs of start-up a record (${baseMs.toFixed(0)} ms with one task); each record is read and indexed at start`)
    }
  } finally {
    await net.stop()
  }
}

async function readTask (path: string, id: string): Promise<{ record: TaskRecord, lease?: LeaseState, result?: StoredResult }> {
  const store = await Store.open({ path })
  try {
    const [record, lease, result] = await Promise.all([store.tasks.get(id), store.leases.get(id), store.results.get(id)])
    if (record?.final?.state !== 'completed') throw new Error(`the task did not complete: ${record?.final?.state ?? 'unfinished'}`)
    return { record, lease, result }
  } finally {
    await store.close()
  }
}

/** Writes `n` copies of a finished record under new ids into the store at `path` (its node stopped). */
async function copyRecords (path: string, record: TaskRecord, extra: { lease?: LeaseState, result?: StoredResult }, n: number): Promise<void> {
  const store = await Store.open({ path })
  try {
    const replicas = new LevelReplicaStore(store, { sync: false })
    const t0 = Date.now() - 3 * 24 * 3600_000
    let batch: Array<Promise<void>> = []
    for (let i = 0; i < n; i++) {
      const copy = structuredClone(record)
      const at = t0 + i * 1_000
      copy.task.id = randomBytes(32).toString('hex')
      copy.task.createdAt = at
      copy.updatedAt = at + 5
      if (copy.final !== undefined) copy.final.at = at + 5
      batch.push(replicas.write(copy.task.id, { record: copy, ...extra }, { lazy: true }))
      if (batch.length >= 2_000) await Promise.all(batch.splice(0))
    }
    await Promise.all(batch)
  } finally {
    await store.close()
  }
}

/**
 * What anti-entropy costs a mesh at rest as its nodes keep more tasks: 3 nodes in this process
 * sharing `count` settled records, the CPU of a round on each node, the first and the next three.
 */
export async function benchAntiEntropyAtRest (add: AddRow, count = 100_000): Promise<void> {
  const net = await createTestnet(3, { tasks: { agents: [], antiEntropyIntervalMs: 3_600_000, antiEntropyMinAgeMs: 1, sweepIntervalMs: 3_600_000, pullIntervalMs: 3_600_000 } })
  try {
    await net.ready()
    const members = net.nodes.map(n => n.peerId.toString())
    const at = Date.now() - 60_000
    for (let i = 0; i < count; i += 1_000) {
      const records = Array.from({ length: Math.min(1_000, count - i) }, (_, j) => newRecord(makeTask({ capability: 'nobody.runs', input: { i: i + j }, submitter: members[0] as string, maxAttempts: 3, timeoutMs: 1_000, deadline: at + 3_600_000, now: at }), { epoch: 0, members }, at))
      // each node its own copy, as read from disk
      for (const node of net.nodes) await Promise.all(records.map(async r => node.tasks?.replica.put(structuredClone(r))))
    }
    const rounds: number[] = []
    for (let k = 0; k < 4; k++) {
      const cpu0 = process.cpuUsage()
      for (const node of net.nodes) await node.tasks?.antiEntropy.runRound()
      const cpu = process.cpuUsage(cpu0)
      rounds.push((cpu.user + cpu.system) / 1000)
    }
    add(`anti-entropy at rest, 3 nodes sharing ${count.toLocaleString('en')} records, a round on each`, `${rounds.slice(1).map(ms => ms.toFixed(0)).join(' / ')} ms of CPU`,
      `after a first round of ${rounds[0]?.toFixed(0) ?? '?'} ms; the whole process, nothing else changing`)
  } finally {
    await net.stop()
  }
}
