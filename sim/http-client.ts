import http from 'node:http'

/**
 * The daemons bench's HTTP client: node:http on kept-alive connections. fetch (undici)
 * with a timeout signal a request cost the bench process 0.45-0.55 ms of CPU a task against
 * 0.15-0.21 ms here (3 daemons, 64 in flight), CPU the daemons then lacked on two cores.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 1_024 })

export interface JsonAnswer { status: number, body: any }

/** One request; rejects with an error named TimeoutError after `timeoutMs`, or on a network error. */
export async function requestJson (url: string, init: { method?: string, body?: string, timeoutMs: number }): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', agent, headers: init.body === undefined ? {} : { 'content-type': 'application/json' } }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        clearTimeout(timer)
        let body: any
        try { body = JSON.parse(text) } catch { body = { raw: text.slice(0, 200) } }
        resolve({ status: res.statusCode ?? 0, body })
      })
      res.on('error', fail)
    })
    function fail (err: Error): void {
      clearTimeout(timer)
      reject(err)
    }
    const timer = setTimeout(() => {
      const err = new Error(`no answer from ${url} in ${init.timeoutMs} ms`)
      err.name = 'TimeoutError'
      req.destroy(err)
    }, init.timeoutMs)
    req.on('error', fail)
    req.end(init.body)
  })
}
