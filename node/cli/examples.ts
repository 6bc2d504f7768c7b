import type { Command } from 'commander'

/** Each command's --help ends with examples: the first thing a new user looks for. Keyed by the command's path. */
export const EXAMPLES: Record<string, string[]> = {
  node: [
    'agentmesh node --data ./a --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0',
    'agentmesh node --data ./b --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --api 127.0.0.1:0',
    'agentmesh node --agents echo,sleep --llm-model llama3 --llm-base-url http://127.0.0.1:11434/v1',
    'agentmesh node --log-format json --log-level warn'
  ],
  keygen: ['agentmesh keygen --swarm-key ./swarm.key   # then give every node --swarm-key ./swarm.key'],
  status: ['agentmesh status --data ./a', 'agentmesh status --api http://127.0.0.1:7070 --json'],
  peers: ['agentmesh peers --data ./a'],
  capabilities: ['agentmesh capabilities --data ./a', 'agentmesh capabilities --json'],
  submit: [
    'agentmesh submit --capability echo --input \'{"hello":"mesh"}\' --wait',
    'agentmesh submit --capability mapreduce --input @book.txt --wait',
    'agentmesh submit --capability text.reverse --input \'"abc"\' --require-peer',
    'agentmesh submit --bulk tasks.jsonl'
  ],
  task: ['agentmesh task 3f2a9c0d          # a unique prefix of the id is enough', 'agentmesh task 3f2a9c0d --force-placement'],
  tasks: ['agentmesh tasks --state dead', 'agentmesh tasks --capability echo --limit 20', 'agentmesh tasks --parent 3f2a9c0d   # the subtasks, as a tree'],
  watch: ['agentmesh watch 3f2a9c0d           # one task, to its outcome', 'agentmesh watch --capability echo   # every echo task as it changes', 'agentmesh watch --json'],
  trace: ['agentmesh trace 3f2a9c0d           # the timeline of a task and its subtasks', 'agentmesh trace 3f2a9c0d --json'],
  cancel: ['agentmesh cancel 3f2a9c0d'],
  dlq: ['agentmesh dlq list', 'agentmesh dlq redrive 3f2a9c0d', 'agentmesh dlq drop 3f2a9c0d'],
  'dlq list': ['agentmesh dlq list --json'],
  'dlq redrive': ['agentmesh dlq redrive 3f2a9c0d'],
  'dlq drop': ['agentmesh dlq drop 3f2a9c0d'],
  signal: ['agentmesh signal 3f2a9c0d go --data \'{"n":5}\'   # wakes ctx.waitFor("go") in the task'],
  approve: ['agentmesh approve 3f2a9c0d                  # the tool call it waits on now', 'agentmesh approve 3f2a9c0d --call call_1 --reject --reason "not on production"'],
  memory: ['agentmesh memory put notes n1 --text "the cat sat on the mat" --metadata \'{"topic":"cats"}\'', 'agentmesh memory search notes "where did the cat sit" -k 5'],
  'memory put': ['agentmesh memory put notes n1 --text "the cat sat on the mat"', 'agentmesh memory put vectors v1 --vector \'[0.1,0.2,0.3]\' --metadata \'{"kind":"demo"}\''],
  'memory search': ['agentmesh memory search notes "cats" -k 5 --filter \'{"topic":"cats"}\'', 'agentmesh memory search vectors --vector \'[0.1,0.2,0.3]\' --json'],
  'memory rm': ['agentmesh memory rm notes n1'],
  mcp: ['agentmesh mcp --api http://127.0.0.1:7070   # an MCP server on stdio, for Claude Desktop or any MCP client'],
  sim: ['agentmesh sim', 'agentmesh sim --scenario crash --nodes 7 --tasks 200 --report report.html', 'agentmesh sim --processes --scenario pause']
}

/** Adds each command's examples after its help; answers the command paths that have none. */
export function addExamples (program: Command): string[] {
  const missing: string[] = []
  const walk = (cmd: Command, prefix: string): void => {
    for (const sub of cmd.commands) {
      const path = `${prefix}${sub.name()}`
      const examples = EXAMPLES[path]
      if (examples === undefined) missing.push(path)
      else sub.addHelpText('after', `\nExamples:\n${examples.map(e => `  ${e}`).join('\n')}`)
      walk(sub, `${path} `)
    }
  }
  walk(program, '')
  return missing
}
