// The agentmesh dashboard: one plain ES module, no build step, nothing fetched but this node's own
// API. The page's CSP allows same-origin scripts and styles only, so the DOM is built with
// createElement: no HTML strings, no inline handlers, no style attributes.

const TOKEN_KEY = 'agentmeshToken'
const STATES = ['pending', 'running', 'waiting', 'completed', 'failed', 'canceled', 'dead', 'blocked']
const FINAL = new Set(['completed', 'dead', 'canceled'])
const SVG_NS = 'http://www.w3.org/2000/svg'
const REFRESH_MS = 4000
const TASK_ID = /^[0-9a-f]{64}$/

// ---- small helpers

/** An element: props starting with "on" are listeners, `text` is its text, the rest attributes. */
const h = (tag, props = {}, ...children) => build(document.createElement(tag), props, children)
/** The same for SVG, whose elements live in their own namespace. */
const s = (tag, props = {}, ...children) => build(document.createElementNS(SVG_NS, tag), props, children)
const present = c => c !== undefined && c !== null && c !== false

function build (el, props, children) {
  for (const [k, v] of Object.entries(props)) {
    if (!present(v)) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (k === 'text') el.textContent = String(v)
    else if (k === 'value' || k === 'selected' || k === 'disabled') el[k] = v
    else el.setAttribute(k, String(v))
  }
  for (const c of children.flat().filter(present)) el.append(c instanceof Node ? c : String(c))
  return el
}

const ignore = () => {}
/** replaceChildren without the empty ones (it would show null as text) */
const fill = (el, ...children) => el.replaceChildren(...children.flat().filter(present))
const shortId = id => typeof id === 'string' ? id.slice(0, 12) : '—'
const shortPeer = id => typeof id === 'string' ? id.slice(-8) : '—'
const sleep = (ms, signal) => new Promise(resolve => { setTimeout(resolve, ms); signal.addEventListener('abort', resolve, { once: true }) })
const debounce = (ms, fn) => { let timer; return () => { clearTimeout(timer); timer = setTimeout(fn, ms) } }
/** setInterval that stops with its view */
const every = (ms, fn, signal) => { const timer = setInterval(fn, ms); signal.addEventListener('abort', () => clearInterval(timer), { once: true }) }

/** A duration for people: 850 ms, 1.5 s, 42 s, 3 min 5 s, 2 h 10 min, 4 d. */
function span (ms) {
  if (!Number.isFinite(ms)) return '—'
  ms = Math.max(0, ms)
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
  const [big, small, a, b] = ms < 3_600_000 ? [60_000, 1000, 'min', 's'] : ms < 86_400_000 ? [3_600_000, 60_000, 'h', 'min'] : [86_400_000, 3_600_000, 'd', 'h']
  return `${Math.floor(ms / big)} ${a} ${Math.floor(ms % big / small)} ${b}`
}

/** "12 s ago", "3 min ago": the largest unit alone */
const ago = t => Date.now() - t < 1000 ? 'just now' : `${span(Date.now() - t).replace(/\.\d/, '').split(' ').slice(0, 2).join(' ')} ago`
const when = t => Number.isFinite(t) ? h('time', { datetime: new Date(t).toISOString(), title: new Date(t).toLocaleString(), text: ago(t) }) : '—'
const badge = state => h('span', { class: `badge ${state}`, text: state })
const taskLink = id => h('a', { href: `#/task/${id}`, title: id }, h('code', { text: shortId(id) }))
const json = value => h('pre', { class: 'json', text: truncate(JSON.stringify(value, null, 2) ?? 'undefined', 100_000) })
const truncate = (text, n) => text.length > n ? `${text.slice(0, n)}…` : text
const table = (id, heads, body) => h('table', { id }, h('thead', {}, h('tr', {}, heads.map(text => h('th', { text })))), body)
/** a row: a cell given as a <td> keeps its own attributes, anything else is wrapped in one */
const tr = (props, cells) => h('tr', props, cells.map(c => c instanceof HTMLTableCellElement ? c : h('td', {}, c)))
const emptyRow = (cols, text) => h('tr', {}, h('td', { colspan: cols, class: 'muted', text }))

let selfId
const peerTag = id => h('code', { class: id === selfId ? 'peer self' : 'peer', title: id, text: id === selfId ? `${shortPeer(id)} (this node)` : shortPeer(id) })

// ---- notes: one message per failing endpoint, cleared when it answers again or the page changes

const notes = new Map()
function note (key, message) {
  if (key !== undefined) { if (message === undefined) notes.delete(key); else notes.set(key, message) }
  document.getElementById('notes').replaceChildren(...[...notes.values()].map(m => h('p', { class: 'note', text: m })))
  document.getElementById('token').classList.toggle('wanted', [...notes.values()].some(m => m.includes('token')))
}

// ---- the API

function authHeaders () {
  const token = sessionStorage.getItem(TOKEN_KEY)
  return token ? { authorization: `Bearer ${token}` } : {}
}

/** The API's `{error: {name, message}}`; a 401 says where the token goes. */
async function failure (res) {
  const body = await res.json().catch(() => undefined)
  const message = body?.error?.message ?? `${res.status} ${res.statusText}`
  return Object.assign(new Error(res.status === 401 ? `${message}: enter this node's API token at the top right` : message), { status: res.status })
}

async function api (path, init = {}) {
  const key = `${init.method ?? 'GET'} ${path.split('?')[0]}`
  try {
    const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...init.headers } })
    if (!res.ok) throw await failure(res)
    const body = await res.json()
    note(key)
    return body
  } catch (err) {
    note(key, `${key}: ${err.message}`)
    throw err
  }
}

/** Server-sent events read from fetch: EventSource cannot send an Authorization header. */
async function follow (path, { signal, lastId, onOpen, onEvent }) {
  const headers = { ...authHeaders(), accept: 'text/event-stream', ...(lastId === undefined ? {} : { 'last-event-id': lastId }) }
  const res = await fetch(path, { headers, signal })
  if (!res.ok) throw await failure(res)
  onOpen?.()
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value.replace(/\r\n?/g, '\n')
    let end
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const e = { event: 'message', data: '' }
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue // comments keep the connection alive
        const at = line.indexOf(':')
        const field = at < 0 ? line : line.slice(0, at)
        const v = at < 0 ? '' : line.slice(at + (line[at + 1] === ' ' ? 2 : 1))
        if (field === 'data') e.data += (e.data === '' ? '' : '\n') + v
        else if (field === 'event' || field === 'id') e[field] = v
      }
      try { e.data = JSON.parse(e.data) } catch { continue }
      onEvent(e)
    }
  }
}

/** Retries a stream with backoff until `signal` stops it; a 4xx other than 429 is final. */
async function keepFollowing (path, opts, onDown) {
  let delay = 1000
  while (!opts.signal.aborted) {
    try {
      await follow(path, { ...opts, onOpen: () => { delay = 1000; opts.onOpen?.() } })
      if (opts.ended?.()) return
    } catch (err) {
      if (opts.signal.aborted) return
      onDown(err)
      if (err.status >= 400 && err.status < 500 && err.status !== 429) return
    }
    await sleep(delay, opts.signal)
    delay = Math.min(delay * 2, 15_000)
  }
}

// ---- the mesh's state changes: one stream for the page's life, handed to the page shown

let view
let meshStream
function startMeshStream () {
  meshStream?.abort()
  const controller = meshStream = new AbortController()
  const live = document.getElementById('live')
  const set = on => { live.textContent = on ? 'live' : 'offline'; live.classList.toggle('on', on) }
  const onEvent = e => { if (e.event === 'state') view?.onState?.(e.data) }
  keepFollowing('/v1/events', { signal: controller.signal, onEvent, onOpen: () => { set(true); note('events') } }, err => { set(false); note('events', `GET /v1/events: ${err.message}`) })
    .finally(() => { if (meshStream === controller) set(false) })
}

function showNode (mesh) {
  selfId = mesh.self
  document.getElementById('node').replaceChildren('peer ', h('code', { title: mesh.self, text: shortPeer(mesh.self) }), ' · mesh ', h('strong', { text: mesh.mesh ?? '—' }))
}

// ---- overview: the mesh and the task list

function overview ({ signal, params }) {
  const stateSelect = h('select', { id: 'f-state', 'aria-label': 'state', onchange: () => changed() },
    h('option', { value: '', text: 'any state' }), ...STATES.map(st => h('option', { value: st, text: st, selected: st === params.get('state') })))
  const capInput = h('input', { id: 'f-capability', type: 'search', placeholder: 'capability', 'aria-label': 'capability', value: params.get('capability') ?? '', oninput: debounce(300, () => changed()) })
  const [picture, peers, tasks, count] = [h('div', { class: 'picture' }), h('tbody'), h('tbody'), h('span', { class: 'muted' })]

  const filters = () => new URLSearchParams(Object.entries({ state: stateSelect.value, capability: capInput.value.trim() }).filter(([, v]) => v !== ''))
  function changed () {
    // replaceState fires no hashchange: the page stays, and the input keeps its focus
    history.replaceState(null, '', `#/${String(filters()) === '' ? '' : `?${filters()}`}`)
    loadTasks().catch(ignore)
  }

  async function loadMesh () {
    const mesh = await api('/v1/mesh')
    showNode(mesh)
    picture.replaceChildren(meshPicture(mesh.peers))
    fill(peers, mesh.peers.length === 0 ? emptyRow(6, 'no live peer yet') : mesh.peers.map(p => tr({ 'data-peer': p.peerId }, [
      peerTag(p.peerId), p.capabilities.map(c => h('span', { class: 'chip', text: c })),
      Object.entries(p.freeSlots ?? {}).map(([c, n]) => `${c} ${n}`).join(' · ') || '—',
      h('td', { class: 'muted', text: p.version ?? '' }), when(p.lastSeen), p.self ? '—' : p.connected ? 'yes' : 'no'])))
  }

  let latest = 0
  async function loadTasks () {
    const mine = ++latest
    const { tasks: list } = await api(`/v1/tasks?${filters()}&limit=100`)
    if (mine !== latest) return // an older answer than the one shown
    count.textContent = list.length === 100 ? 'the newest 100' : `${list.length}`
    fill(tasks, list.length > 0 ? list.map(taskRow) : emptyRow(8, 'no task'))
  }

  const refresh = () => { loadMesh().catch(ignore); loadTasks().catch(ignore) }
  refresh()
  every(REFRESH_MS, refresh, signal) // in case an event was missed, or the stream is down
  const onState = debounce(250, () => { if (!signal.aborted) loadTasks().catch(ignore) })

  const el = h('div', {},
    h('section', { class: 'card' }, h('h2', { text: 'Mesh' }),
      h('div', { class: 'mesh-grid' }, picture,
        table('peers', ['peer', 'capabilities', 'free slots', 'version', 'seen', 'connected'], peers))),
    h('section', { class: 'card' }, h('h2', {}, 'Tasks ', count),
      h('form', { class: 'filters', onsubmit: e => { e.preventDefault(); changed() } }, stateSelect, capInput),
      table('tasks', ['task', 'capability', 'state', 'attempts', 'executor', 'created', 'took', 'error'], tasks)))
  return { el, nav: 'overview', onState }
}

const attempts = t => `${t.attempts}/${t.maxAttempts}${t.generation > 0 ? ` · gen ${t.generation}` : ''}`

function taskRow (t) {
  const took = t.finishedAt !== undefined ? span(t.finishedAt - t.createdAt) : h('td', { class: 'muted', text: `${span(Date.now() - t.createdAt)} so far` })
  return tr({ 'data-id': t.id, 'data-state': t.state }, [taskLink(t.id), t.capability, badge(t.state), attempts(t), t.executor ? peerTag(t.executor) : '—',
    when(t.createdAt), took, h('td', { class: 'error-cell', title: t.error, text: t.error ? truncate(t.error, 60) : '' })])
}


/** The live peers on a circle, this node on top and highlighted, a line to each peer it is connected to. */
function meshPicture (peers) {
  const [W, H, r] = [360, 240, peers.length > 1 ? 90 : 0]
  const [cx, cy] = [W / 2, H / 2 - 8]
  const sorted = [...peers].sort((a, b) => (b.self - a.self) || (a.peerId < b.peerId ? -1 : 1))
  const angle = i => -Math.PI / 2 + 2 * Math.PI * i / sorted.length
  const at = new Map(sorted.map((p, i) => [p.peerId, [cx + r * Math.cos(angle(i)), cy + r * Math.sin(angle(i))]]))
  const svg = s('svg', { class: 'mesh', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${peers.length} live peers` })
  const self = sorted.find(p => p.self)
  for (const p of sorted) {
    if (self === undefined || p.self || !p.connected) continue
    const [x1, y1] = at.get(self.peerId); const [x2, y2] = at.get(p.peerId)
    svg.append(s('line', { x1, y1, x2, y2, class: 'link' }))
  }
  for (const p of sorted) {
    const [x, y] = at.get(p.peerId)
    const slots = Object.values(p.freeSlots ?? {}).reduce((a, b) => a + b, 0)
    svg.append(s('g', { class: p.self ? 'node self' : p.connected ? 'node' : 'node far' },
      s('title', { text: `${p.peerId}${p.self ? ' (this node)' : ''}\n${p.capabilities.join(', ') || 'no capability'}` }),
      s('circle', { cx: x, cy: y, r: 17, class: p.self ? 'self' : '' }),
      s('text', { x, y: y + 4, 'text-anchor': 'middle', class: 'slots', text: p.capabilities.length > 0 ? String(slots) : '' }),
      s('text', { x, y: y + 32, 'text-anchor': 'middle', text: shortPeer(p.peerId) })))
  }
  if (peers.length === 0) svg.append(s('text', { x: cx, y: cy, 'text-anchor': 'middle', class: 'muted', text: 'no live peer yet' }))
  return svg
}

// ---- one task

function taskView (id, { signal }) {
  if (!TASK_ID.test(id)) return { el: h('p', { class: 'note', text: `not a task id: ${id}` }), nav: 'overview' }
  const [head, timeline, io, tree] = [h('div'), h('div'), h('div', { class: 'io' }), h('div', { id: 'subtasks' })]
  const events = h('ol', { id: 'events', class: 'events' })
  const streamNote = h('p', { class: 'muted', text: 'following…' })
  let task
  let outcome = false
  let lastId

  async function load () {
    task = await api(`/v1/tasks/${id}`)
    render()
    const nodes = await subtasks(id, 1)
    tree.replaceChildren(nodes.length > 0 ? treeList(nodes) : h('p', { class: 'muted', text: 'none' }))
  }
  const refresh = debounce(250, () => { if (!signal.aborted) load().catch(ignore) })

  function render () {
    fill(head,
      h('h2', {}, 'Task ', h('code', { title: id, text: shortId(id) }), ' ', badge(task.state)),
      h('dl', { class: 'meta' }, ...[
        ['capability', task.capability],
        ['attempts', `${task.attempts} of ${task.maxAttempts}${task.generation > 0 ? `, generation ${task.generation}` : ''}`],
        ['submitter', peerTag(task.submitter)],
        ['executor', task.executor ? peerTag(task.executor) : '—'],
        ['created', when(task.createdAt)],
        ['finished', when(task.finishedAt)],
        ['took', span(task.finishedAt - task.createdAt)],
        ['placement', task.placement ? h('span', {}, `epoch ${task.placement.epoch}: `, ...task.placement.members.map(peerTag)) : '—'],
        ...(task.parent ? [['parent', taskLink(task.parent)]] : [])
      ].flatMap(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)])),
      task.error ? h('p', { class: 'error', text: task.error }) : null)
    fill(io,
      h('div', {}, h('h3', { text: 'Input' }), json(task.input)),
      h('div', { id: 'result' }, h('h3', { text: 'Result' }), 'result' in task ? json(task.result) : h('p', { class: 'muted', text: FINAL.has(task.state) ? 'none' : 'not yet' })))
    renderTimeline()
  }

  function renderTimeline () {
    const rows = task.history ?? []
    // drawn at the box's own width, so that its text keeps the page's size
    fill(timeline, rows.length === 0 ? h('p', { class: 'muted', text: 'no attempt yet' }) : timelineSvg(task, rows, Math.max(480, timeline.clientWidth || 800)),
      h('ol', { class: 'attempts' }, ...rows.filter(a => a.error).map(a => h('li', {}, peerTag(a.peer), ` ${a.outcome}: `, h('span', { class: 'error', text: a.error })))))
  }

  function onEvent (e) {
    lastId = e.id
    events.append(eventItem(e))
    if (FINAL.has(e.event)) outcome = true
    if (e.event !== 'progress') refresh() // the record changed: the timeline, and at the end the result
  }

  load().catch(ignore)
  every(1000, () => { if (task !== undefined && !FINAL.has(task.state)) renderTimeline() }, signal) // a running bar grows
  every(REFRESH_MS, () => { if (task === undefined || !FINAL.has(task.state)) refresh() }, signal)
  // a stream cut before the outcome resumes after the last event seen (the getter is read per try)
  keepFollowing(`/v1/tasks/${id}/events`, { signal, get lastId () { return lastId }, ended: () => outcome, onEvent, onOpen: () => { streamNote.textContent = 'following…' } },
    err => { streamNote.textContent = `event stream: ${err.message}` })
    .then(() => { if (outcome) streamNote.textContent = 'the stream ended with the outcome' }, ignore)

  const el = h('div', {},
    h('section', { class: 'card' }, head),
    h('section', { class: 'card' }, h('h3', { text: 'Attempts' }), timeline),
    h('section', { class: 'card' }, io),
    h('div', { class: 'columns' },
      h('section', { class: 'card' }, h('h3', { text: 'Events' }), events, streamNote),
      h('section', { class: 'card' }, h('h3', { text: 'Subtasks' }), tree)))
  return { el, nav: 'overview' }
}

/** Attempts as bars on one time axis, from the submit to the outcome (or now). */
function timelineSvg (task, rows, W) {
  const now = Date.now()
  const t0 = Math.min(task.createdAt ?? Infinity, ...rows.map(a => a.startedAt))
  const t1 = Math.max(task.finishedAt ?? 0, ...rows.map(a => a.endedAt ?? now), t0 + 1)
  const L = 110; const R = 130; const ROW = 24; const TOP = 22
  const x = t => L + (t - t0) / (t1 - t0) * (W - L - R)
  const svg = s('svg', { class: 'timeline', viewBox: `0 0 ${W} ${TOP + rows.length * ROW + 4}`, role: 'img', 'aria-label': `${rows.length} attempts` },
    s('line', { x1: L, y1: TOP - 6, x2: W - R, y2: TOP - 6, class: 'axis' }),
    s('text', { x: L, y: 11, class: 'tick', text: 'submitted' }),
    s('text', { x: W - R, y: 11, 'text-anchor': 'end', class: 'tick', text: `+${span(t1 - t0)}` }))
  rows.forEach((a, i) => {
    const [y, outcome, end] = [TOP + i * ROW, a.outcome ?? 'running', a.endedAt ?? now]
    const x1 = x(a.startedAt); const x2 = Math.max(x(end), x1 + 3)
    svg.append(
      s('text', { x: L - 8, y: y + 15, 'text-anchor': 'end', class: 'label', text: `${shortPeer(a.peer)} g${a.generation}` }),
      s('rect', { x: x1, y: y + 4, width: x2 - x1, height: ROW - 8, rx: 3, class: `bar ${outcome}` },
        s('title', { text: `${outcome} on ${a.peer}, ${span(end - a.startedAt)}${a.error ? `: ${a.error}` : ''}` })),
      s('text', { x: x2 + 6, y: y + 15, class: 'label', text: `${outcome} ${span(end - a.startedAt)}` }))
  })
  return svg
}

/** The subtasks, as this node knows them, to depth 4 and at most about 200 of them (a request per task listed). */
async function subtasks (parent, depth, budget = { left: 200 }) {
  if (depth > 4 || budget.left <= 0) return []
  const { tasks } = await api(`/v1/tasks?parent=${parent}&limit=100`)
  budget.left -= tasks.length
  return Promise.all(tasks.map(async t => ({ t, children: await subtasks(t.id, depth + 1, budget) })))
}

const treeList = nodes => h('ul', { class: 'tree' }, ...nodes.map(({ t, children }) =>
  h('li', {}, taskLink(t.id), ` ${t.capability} `, badge(t.state), children.length > 0 ? treeList(children) : null)))

function eventItem ({ event, data }) {
  const d = data ?? {}
  const detail = {
    submitted: () => ['by ', peerTag(d.submitter)],
    claimed: () => [`attempt ${d.attempt} by `, peerTag(d.peer), d.generation > 0 ? ` (generation ${d.generation})` : ''],
    progress: () => [peerTag(d.peer), ' ', h('code', { text: truncate(JSON.stringify(d.event) ?? '', 200) })],
    completed: () => ['by ', peerTag(d.executor)],
    dead: () => [d.reason ?? '', d.lastError ? h('span', { class: 'error', text: ` — ${d.lastError}` }) : ''],
    canceled: () => [d.reason ?? '']
  }[event] ?? (() => [peerTag(d.peer), d.error ? h('span', { class: 'error', text: ` ${d.error}` }) : ''])
  const time = typeof d.at === 'number' ? new Date(d.at).toLocaleTimeString([], { hour12: false }) : ''
  return h('li', { 'data-event': event }, h('span', { class: 'muted', text: time }), ' ', h('span', { class: `badge ${event}`, text: event }), ' ', ...detail())
}

// ---- dead letters

function dlqView ({ signal }) {
  const rows = h('tbody')
  const said = h('p', { id: 'dlq-status', class: 'muted' })

  async function load () {
    const { deadLetters } = await api('/v1/deadletter')
    fill(rows, deadLetters.length > 0 ? deadLetters.map(row) : emptyRow(6, 'no dead letter'))
  }

  async function act (buttons, method, path, say) {
    for (const b of buttons) b.disabled = true
    said.textContent = await api(path, { method }).then(say, err => err.message)
    await load().catch(ignore)
  }

  function row (d) {
    const lastError = [...(d.history ?? [])].reverse().find(a => a.error)?.error
    const redrive = h('button', { class: 'redrive', text: 'Redrive', onclick: () => act([redrive, drop], 'POST', `/v1/deadletter/${d.id}/redrive`, r => `${shortId(d.id)} redriven: ${r.state}, generation ${r.generation}`) })
    // dropping cannot be undone: the first click arms the button, the second drops
    const drop = h('button', {
      class: 'drop danger',
      text: 'Drop',
      onclick: () => {
        if (drop.textContent !== 'Drop') return act([redrive, drop], 'DELETE', `/v1/deadletter/${d.id}`, () => `${shortId(d.id)} dropped`)
        drop.textContent = 'Drop: sure?'
        setTimeout(() => { drop.textContent = 'Drop' }, 4000)
      }
    })
    return tr({ 'data-id': d.id }, [taskLink(d.id), d.capability, attempts(d),
      [d.reason ?? '', lastError && !(d.reason ?? '').includes(lastError) ? h('div', { class: 'error', text: lastError }) : null],
      when(d.finishedAt ?? d.updatedAt), h('td', { class: 'actions' }, redrive, ' ', drop)])
  }

  load().catch(ignore)
  every(REFRESH_MS, () => load().catch(ignore), signal)
  const onState = debounce(250, () => { if (!signal.aborted) load().catch(ignore) })
  const el = h('section', { class: 'card' }, h('h2', { text: 'Dead letters' }), said,
    table('dlq', ['task', 'capability', 'attempts', 'reason', 'died', ''], rows))
  return { el, nav: 'dlq', onState: e => { if (e.state === 'dead' || e.state === 'pending') onState() } }
}

// ---- routing: #/ (with ?state=&capability=), #/task/<id>, #/dlq

let viewController
function route () {
  viewController?.abort()
  viewController = new AbortController()
  notes.clear()
  note()
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?')
  const ctx = { signal: viewController.signal, params: new URLSearchParams(query) }
  const task = /^\/task\/(.*)$/.exec(path)
  view = task !== null ? taskView(task[1], ctx) : path === '/dlq' ? dlqView(ctx) : overview(ctx)
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === view.nav)
  document.getElementById('view').replaceChildren(view.el)
  window.scrollTo(0, 0)
}

const loadNode = () => api('/v1/mesh').then(showNode, ignore)

document.getElementById('token-form').addEventListener('submit', e => {
  e.preventDefault()
  const input = document.getElementById('token')
  const token = input.value.trim()
  if (token === '') sessionStorage.removeItem(TOKEN_KEY); else sessionStorage.setItem(TOKEN_KEY, token)
  input.value = ''
  input.placeholder = token === '' ? 'API token' : 'token set'
  loadNode()
  startMeshStream()
  route()
})
if (sessionStorage.getItem(TOKEN_KEY)) document.getElementById('token').placeholder = 'token set'
window.addEventListener('hashchange', route)
loadNode()
startMeshStream()
route()
