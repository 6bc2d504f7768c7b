/** One JSON request to a daemon's control API: the status and the parsed body. */
export async function call (api: string, method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, json: await res.json() }
}
