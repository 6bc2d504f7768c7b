const mods = process.argv.slice(2)
const rss = () => (process.memoryUsage().rss / 1048576).toFixed(1)
console.log('base', rss())
for (const m of mods) { await import(m); globalThis.gc?.(); console.log(m, rss(), (process.memoryUsage().heapUsed/1048576).toFixed(1)) }
