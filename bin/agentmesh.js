#!/usr/bin/env node
// libp2p 3 needs Node 22+; npm scripts and npx put the pinned runtime (the `node` dev dependency) first on PATH.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`agentmesh: needs Node.js 22 or newer, this is ${process.version}; run it as \`npx agentmesh\` or through npm scripts, which use the project's pinned Node 22\n`)
  process.exit(1)
}
const { main } = await import('../dist/node/cli/main.js')
await main(process.argv)
