/* `npm start`: five nodes count words by map-reduce while one of them crashes and comes back. */
import { runSimCommand } from '../node/cli/sim-command.js'
import { line } from '../node/cli/output.js'

async function demo (): Promise<void> {
  const started = Date.now()
  line('agentmesh demo: a 5-node mesh on this machine runs map-reduce word counts over a bundled text;')
  line('each job splits into text.wordcount subtasks spread over the peers. One node is killed mid-run')
  line('and restarted from its data dir; its work is taken over by the others.')
  line('')
  const report = await runSimCommand({ scenario: 'demo', report: 'reports/demo.html', json: 'reports/demo.json' })
  line('')
  line(`done in ${((Date.now() - started) / 1000).toFixed(1)} s; open reports/demo.html in a browser for the charts`)
  if (report.invariants.some(i => !i.ok)) process.exitCode = 1
}

demo().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`)
  process.exitCode = 1
})
