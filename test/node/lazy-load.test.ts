import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { runCli, startDaemonProcess } from '../../sim/daemon-process.js'
import { useTmpDirs } from '../helpers/tmp.js'
import type { DaemonProcess } from '../../sim/daemon-process.js'

const RECORDER = fileURLToPath(new URL('../fixtures/record-packages.mjs', import.meta.url))

/** What a node's memory and a command's start-up would pay for, and only some of them use. */
const OPTIONAL = ['openai', '@modelcontextprotocol/sdk', '@a2a-js/sdk']
/** the daemon's, and the simulator's (its progress bar) */
const NODE_ONLY = ['libp2p', '@libp2p/gossipsub', '@libp2p/kad-dht', 'level', 'fastify', 'cli-progress', ...OPTIONAL]

async function packagesIn (file: string): Promise<Set<string>> {
  return new Set((await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean))
}

describe('what a process loads', () => {
  const tmp = useTmpDirs()
  const running: DaemonProcess[] = []
  afterEach(() => {
    for (const d of running.splice(0)) d.proc.kill('SIGKILL')
  })

  it('a client command loads no libp2p, store, HTTP server, simulator, model client, MCP or A2A SDK', async () => {
    const file = join(await tmp(), 'packages')
    const r = await runCli(['status', '--api', 'http://127.0.0.1:1'], { env: { NODE_OPTIONS: `--import ${RECORDER}`, AGENTMESH_PACKAGES_FILE: file } })
    expect(r.code).not.toBe(0)
    const loaded = await packagesIn(file)
    // the recorder works: the CLI's own parser was seen
    expect(loaded).toContain('commander')
    expect(NODE_ONLY.filter(p => loaded.has(p))).toEqual([])
  })

  it('a node loads the MCP SDK on its first MCP request, the A2A SDK on its first A2A request, and never the model client without a model', async () => {
    const dir = await tmp()
    const file = join(dir, 'packages')
    const d = await startDaemonProcess(['--data', join(dir, 'node'), '--api', '127.0.0.1:0', '--agents', 'echo'], { env: { NODE_OPTIONS: `--import ${RECORDER}`, AGENTMESH_PACKAGES_FILE: file } })
    running.push(d)
    const atStart = await packagesIn(file)
    expect(atStart).toContain('libp2p')
    expect(OPTIONAL.filter(p => atStart.has(p))).toEqual([])
    const res = await fetch(`${d.api}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} })
    })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('"echo"')
    const after = await packagesIn(file)
    expect(after).toContain('@modelcontextprotocol/sdk')
    expect(after.has('@a2a-js/sdk')).toBe(false)
    const card = await fetch(`${d.api}/.well-known/agent-card.json`)
    expect(card.status).toBe(200)
    expect(JSON.stringify(await card.json())).toContain('"echo"')
    const last = await packagesIn(file)
    expect(last).toContain('@a2a-js/sdk')
    expect(last.has('openai')).toBe(false)
  })
})
