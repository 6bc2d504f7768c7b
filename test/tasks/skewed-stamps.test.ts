import { afterEach, describe, expect, it } from 'vitest'
import { echoAgent } from '../../node/agents/basic.js'
import { makeTask, newRecord } from '../../protocols/task/index.js'
import { createTestnet } from '../../sim/testnet.js'
import { waitFor } from '../../sim/wait.js'
import { FAST_TASKS } from '../helpers/fast.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { TaskLayerInit } from '../../node/tasks/options.js'
import type { Testnet } from '../../sim/testnet.js'

const HOUR = 3_600_000

/*
 * A task stored on its placement and offered to nobody (its offer lost, say), stamped by a submitter
 * whose clock runs an hour ahead: created and changed "in an hour" by every other clock. It is
 * claimed by a re-announcement or a pull, each of which waited out the skew before.
 */
describe('a task stamped by a clock an hour ahead', () => {
  const tmp = useTmpDirs()
  let net: Testnet | undefined
  afterEach(async () => { await net?.stop(); net = undefined })

  const cases: Array<[string, Partial<TaskLayerInit>]> = [
    ['is re-announced and runs (no pulls)', { pullIntervalMs: 600_000, reannounceBaseMs: 100, reannounceCapMs: 200 }],
    ['is pulled and runs (no re-announcements)', { reannounceBaseMs: 600_000, reannounceCapMs: 600_000 }]
  ]
  for (const [name, timers] of cases) {
    it(name, async () => {
      net = await createTestnet(3, { baseDir: await tmp(), tasks: { ...FAST_TASKS, ...timers, agents: [echoAgent] } })
      await net.ready()
      const a = net.nodes[0]!
      const ahead = Date.now() + HOUR
      const task = makeTask({ capability: 'echo', input: name, submitter: a.peerId.toString(), maxAttempts: 3, timeoutMs: 10_000, deadline: ahead + HOUR, now: ahead })
      await a.tasks!.service.storeOnPlacement(newRecord(task, a.tasks!.membership.choose(task.id), ahead))
      await waitFor(async () => (await a.tasks!.service.get(task.id)).result !== undefined, { what: 'the task to complete', timeoutMs: 30_000 })
      expect((await a.tasks!.service.get(task.id)).result?.value).toBe(name)
    })
  }
})
