import http from 'node:http'

/**
 * The daemons bench's HTTP client: node:http on kept-alive connections. fetch (undici)
 * with a timeout signal a request cost the bench process 0.45-0.55 ms of CPU a task against
 * 0.15-0.21 ms here (3 daemons, 64 in flight), CPU the daemons then lacked on two cores.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 1_024 })

export interface JsonAnswer { status: number, body: any }

/**
 * One request; rejects with an error named TimeoutError after `timeoutMs`, or on a network error.
 * A kept-alive connection the server closed just as this request went out on it (ECONNRESET before
 * any answer, on a reused socket) is tried once more on a new one, as Node's documentation advises:
 * the server never read that request.
 */
export async function requestJson (url: string, init: { method?: string, body?: string, timeoutMs: number }): Promise<JsonAnswer> {
  try {
    return await requestOnce(url, init)
  } catch (err: any) {
    if (err?.reusedSocket !== true || err?.code !== 'ECONNRESET') throw err
    return await requestOnce(url, init)
  }
}

async function requestOnce (url: string, init: { method?: string, body?: string, timeoutMs: number }): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    let answered = false
    const req = http.request(url, { method: init.method ?? 'GET', agent, headers: init.body === undefined ? {} : { 'content-type': 'application/json' } }, res => {
      answered = true
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
      if (!answered && req.reusedSocket) Object.assign(err, { reusedSocket: true })
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
