import { DEFAULT_ATTEMPT_TIMEOUT_MS, DEFAULT_KEEPALIVE_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_STREAM_HOLD_MS, DEFAULT_WAIT_SLICE_MS, OWNED_BY, TASK_HEADER } from './constants.js'
import { chatTaskInput, chunkOf, completionOf, finishOf, toolCallDeltas, usageOf } from './convert.js'
import { ClientGoneError, CompletionFailedError, InvalidRequestError, ModelNotFoundError, OpenAIError } from './errors.js'
import { liveModels } from './models.js'
import { chatCompletionRequestSchema, chatResultSchema } from './schema.js'
import { StreamedText } from './streamed-text.js'
import type { CompletionMeta } from './convert.js'
import type { ModelEntry } from './models.js'
import type { ChatCompletionRequest, ChatResult } from './schema.js'
import type { CapabilityInfo } from '../gossip/index.js'
import type { Logger } from '@libp2p/interface'
import type { ServerResponse } from 'node:http'

/** Where a task stands after a wait. */
export type TaskOutcome =
  | { done: false }
  | { done: true, state: 'completed', result: unknown }
  | { done: true, state: 'canceled' | 'dead', error?: string }

/** One progress event of a task, as the submitter's progress hub delivers it. */
export interface ProgressEvent { claimId: string, seq: number, event: unknown }

/** What the gateway needs of the node it runs on (node/tasks through the door). */
export interface GatewayBackend {
  /** live peers, this node included */
  peers: () => Array<{ capabilities: CapabilityInfo[] }>
  /** submits from this node; answers the task id */
  submit: (capability: string, input: unknown, options: { timeoutMs: number, deadlineMs: number }) => Promise<string>
  /** waits up to `waitMs` for the task's final state */
  wait: (id: string, waitMs: number) => Promise<TaskOutcome>
  cancel: (id: string) => Promise<void>
  /** the task's progress so far, then as it comes; answers the unsubscribe */
  subscribe: (id: string, listener: (e: ProgressEvent) => void) => () => void
  /** aborted when the node starts to stop: a stream held back for its first token starts then */
  stopping?: AbortSignal
}

export interface GatewayInit {
  /** @default 600_000 (DEFAULT_REQUEST_TIMEOUT_MS) */
  requestTimeoutMs?: number
  /** @default 300_000 (DEFAULT_ATTEMPT_TIMEOUT_MS) */
  attemptTimeoutMs?: number
  /** @default 15_000 (DEFAULT_KEEPALIVE_MS) */
  keepaliveMs?: number
  /** @default 2_000 (DEFAULT_STREAM_HOLD_MS) */
  streamHoldMs?: number
  /** @default 30_000 (DEFAULT_WAIT_SLICE_MS) */
  waitSliceMs?: number
  /** a client that leaves before its answer cancels the task: nobody would read it. @default true */
  cancelOnDisconnect?: boolean
  log?: Logger
}

export interface GatewayStats {
  completions: number
  streams: number
  /** 4xx answers: malformed bodies, unknown models, refused by the model */
  badRequests: number
  modelNotFound: number
  /** completions whose task failed, was canceled or timed out */
  failed: number
  /** clients that left before the answer */
  clientsGone: number
  /** streams whose task was re-run on another peer midway */
  streamsRerun: number
  /** ... and whose final answer did not continue the text already streamed: ended with an error event */
  streamsDiverged: number
}

export function emptyGatewayStats (): GatewayStats {
  return { completions: 0, streams: 0, badRequests: 0, modelNotFound: 0, failed: 0, clientsGone: 0, streamsRerun: 0, streamsDiverged: 0 }
}

/**
 * The OpenAI chat completions API over the mesh: each request is an `llm.chat.<model>` task
 * submitted from this node, answered with its certified result (JSON) or streamed from the
 * progress the executing peer sends here (server-sent events).
 */
export class OpenAIGateway {
  readonly stats: GatewayStats = emptyGatewayStats()
  private readonly requestTimeoutMs: number
  private readonly attemptTimeoutMs: number
  private readonly keepaliveMs: number
  private readonly streamHoldMs: number
  private readonly waitSliceMs: number

  constructor (private readonly backend: GatewayBackend, private readonly init: GatewayInit = {}) {
    this.requestTimeoutMs = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.attemptTimeoutMs = Math.min(init.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS, this.requestTimeoutMs)
    this.keepaliveMs = init.keepaliveMs ?? DEFAULT_KEEPALIVE_MS
    // no byte goes out while a stream is held: never longer than the keep-alive's quiet
    this.streamHoldMs = Math.min(init.streamHoldMs ?? DEFAULT_STREAM_HOLD_MS, this.keepaliveMs)
    this.waitSliceMs = init.waitSliceMs ?? DEFAULT_WAIT_SLICE_MS
  }

  /** `GET /v1/models`: each model a live peer serves, once. */
  models (): { object: 'list', data: ModelEntry[] } {
    return { object: 'list', data: [...liveModels(this.backend.peers()).keys()].map(id => ({ id, object: 'model', created: 0, owned_by: OWNED_BY })) }
  }

  /** `GET /v1/models/:model`. */
  model (id: string): ModelEntry {
    if (!liveModels(this.backend.peers()).has(id)) throw this.notFound(id)
    return { id, object: 'model', created: 0, owned_by: OWNED_BY }
  }

  /** Checks the body and submits its task; errors here are answered as JSON, before any stream begins. */
  async start (body: unknown): Promise<{ req: ChatCompletionRequest, id: string, meta: CompletionMeta, deadline: number }> {
    const parsed = chatCompletionRequestSchema.safeParse(body)
    if (!parsed.success) {
      this.stats.badRequests++
      const issue = parsed.error.issues[0]
      const param = issue === undefined || issue.path.length === 0 ? null : issue.path.map(String).join('.')
      throw new InvalidRequestError(`invalid chat completion request: ${param === null ? '' : `${param}: `}${issue?.message ?? 'invalid'}`, param)
    }
    const req = parsed.data
    const capability = liveModels(this.backend.peers()).get(req.model)
    if (capability === undefined) throw this.notFound(req.model)
    const id = await this.backend.submit(capability, chatTaskInput(req), { timeoutMs: this.attemptTimeoutMs, deadlineMs: this.requestTimeoutMs }).catch(submitRefused)
    return { req, id, meta: { id: `chatcmpl-${id}`, created: Math.floor(Date.now() / 1000), model: req.model }, deadline: Date.now() + this.requestTimeoutMs }
  }

  /** A non-streamed completion: waits for the task's certified result, retries on other peers included. */
  async complete (id: string, meta: CompletionMeta, deadline: number, res: ServerResponse): Promise<Record<string, unknown>> {
    this.stats.completions++
    const gone = this.whenGone(id, res)
    try {
      return completionOf(meta, await this.result(id, deadline, gone.signal))
    } finally {
      gone.done()
    }
  }

  /**
   * A streamed completion, written to `res` once `takeOver` hands it over from the framework: a
   * first chunk with the role, a chunk per token as the executing peer reports it, then the rest of
   * the certified answer, its tool calls, the finish reason, the usage if asked, and `[DONE]`. The
   * head waits up to streamHoldMs for the first token: a task that fails before is thrown, for the
   * door to answer with its status.
   */
  async stream (req: ChatCompletionRequest, id: string, meta: CompletionMeta, deadline: number, res: ServerResponse, takeOver: () => void): Promise<void> {
    this.stats.streams++
    const write = (data: unknown): void => {
      if (!res.destroyed && !res.writableEnded) res.write(`data: ${JSON.stringify(data)}\n\n`)
    }
    // with include_usage, OpenAI's chunks before the last carry `usage: null`
    const noUsage = req.stream_options?.include_usage === true ? null : undefined
    const text = new StreamedText()
    let held: string | undefined = ''
    let tokenCame!: () => void
    const firstToken = new Promise<void>(resolve => { tokenCame = resolve })
    const unsubscribe = this.backend.subscribe(id, e => {
      const token = (e.event as { token?: unknown } | null)?.token
      if (typeof token !== 'string') return
      const claims = text.claims
      const add = text.token(e.claimId, e.seq, token)
      if (text.claims > 1 && claims !== text.claims) this.stats.streamsRerun++
      if (add === '') return
      if (held === undefined) write(chunkOf(meta, { content: add }, null, noUsage))
      else { held += add; tokenCame() }
    })
    let keepalive: ReturnType<typeof setInterval> | undefined
    const gone = this.whenGone(id, res)
    try {
      const outcome = this.result(id, deadline, gone.signal)
      outcome.catch(() => {})
      // an outcome within the hold, a failure or a client gone, is thrown before any head; a stop
      // ends the hold, so the client has the task's id before the stop's cut
      await heldUntil([firstToken, outcome], this.streamHoldMs, this.backend.stopping)
      takeOver()
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', [TASK_HEADER]: id })
      write(chunkOf(meta, { role: 'assistant', content: '' }, null, noUsage))
      if (held !== '') write(chunkOf(meta, { content: held }, null, noUsage))
      held = undefined
      keepalive = setInterval(() => { if (!res.destroyed) res.write(': keep-alive\n\n') }, this.keepaliveMs)
      let result: ChatResult
      try {
        result = await outcome
      } catch (err: any) {
        if (err?.name === 'ClientGoneError') return
        write(err instanceof OpenAIError ? err.toJSON() : { error: { message: String(err?.message ?? err), type: 'api_error', param: null, code: null } })
        return
      }
      const rest = text.rest(result.text)
      if (rest === undefined) {
        // the client has text the certified answer does not begin with: it cannot be taken back
        this.stats.streamsDiverged++
        write(new CompletionFailedError(502, `the completion was run again on another peer after a failure, and its answer differs from the text already streamed (task ${id})`, id, 'stream_diverged').toJSON())
        return
      }
      if (rest !== '') write(chunkOf(meta, { content: rest }, null, noUsage))
      for (const delta of toolCallDeltas(result)) write(chunkOf(meta, delta, null, noUsage))
      write(chunkOf(meta, {}, finishOf(result), noUsage))
      if (req.stream_options?.include_usage === true) write(chunkOf(meta, undefined, null, usageOf(result)))
      if (!res.destroyed && !res.writableEnded) res.write('data: [DONE]\n\n')
    } finally {
      unsubscribe()
      clearInterval(keepalive)
      gone.done()
      if (res.headersSent && !res.writableEnded) res.end()
    }
  }

  /** The task's result once it is final: a completed one's value, else a named error. */
  private async result (id: string, deadline: number, gone: Promise<never>): Promise<ChatResult> {
    while (true) {
      const left = deadline - Date.now()
      if (left <= 0) {
        this.stats.failed++
        void this.backend.cancel(id).catch(() => {})
        throw new CompletionFailedError(504, `no answer within ${this.requestTimeoutMs} ms (task ${id}, canceled)`, id, 'timeout')
      }
      const outcome = await Promise.race([this.backend.wait(id, Math.min(left, this.waitSliceMs)), gone])
      if (!outcome.done) continue
      if (outcome.state === 'completed') {
        const parsed = chatResultSchema.safeParse(outcome.result)
        if (parsed.success) return parsed.data
        this.stats.failed++
        throw new CompletionFailedError(502, `task ${id} answered something other than a chat result`, id, 'bad_result')
      }
      this.stats.failed++
      throw failure(id, outcome.state, outcome.error)
    }
  }

  /** A promise that rejects when the client leaves before the answer is written (and cancels the task). */
  private whenGone (id: string, res: ServerResponse): { signal: Promise<never>, done: () => void } {
    let reject!: (err: Error) => void
    const signal = new Promise<never>((_resolve, rej) => { reject = rej })
    signal.catch(() => {})
    const onClose = (): void => {
      if (res.writableFinished) return
      this.stats.clientsGone++
      if (this.init.cancelOnDisconnect !== false) void this.backend.cancel(id).catch(() => {})
      reject(new ClientGoneError(id))
    }
    res.once('close', onClose)
    // a client that left during the submit closed before this listener was there
    if (res.destroyed && !res.writableFinished) onClose()
    return { signal, done: () => { res.off('close', onClose) } }
  }

  private notFound (model: string): ModelNotFoundError {
    this.stats.modelNotFound++
    return new ModelNotFoundError(model)
  }
}

/** A task that ended other than completed, as the HTTP answer a client of OpenAI expects. */
function failure (id: string, state: string, reason: string | undefined): CompletionFailedError {
  // the model's own refusal of the request (a 4xx) is the client's to fix: passed on with its status
  // (with the model's own error code, when it gave one)
  const refused = /model (?:refused|rate-limited) the request \((4\d\d)(?:, ([\w.-]+))?\): ?(.*)$/s.exec(reason ?? '')
  if (refused !== null) return new CompletionFailedError(Number(refused[1]), `${refused[3] ?? ''} (task ${id})`, id, refused[2] ?? 'model_refused')
  if (state === 'canceled') return new CompletionFailedError(502, `task ${id} was canceled`, id, 'task_canceled')
  return new CompletionFailedError(502, `task ${id} failed on every attempt: ${reason ?? 'no reason given'}`, id, 'task_failed')
}

/** The task layer's refusals of a submit, as OpenAI would answer them (a 500 says nothing useful). */
function submitRefused (err: any): never {
  switch (err?.name) {
    case 'TaskTooLargeError': throw new OpenAIError(413, String(err.message), { code: 'request_too_large' })
    case 'InvalidTaskError': throw new OpenAIError(400, String(err.message), { code: 'invalid_request' })
    case 'QuorumUnavailableError': throw new OpenAIError(503, String(err.message), { type: 'api_error', code: 'mesh_unavailable' })
    case 'OverloadedError': throw new OpenAIError(429, String(err.message), { type: 'rate_limit_error', code: 'mesh_overloaded', retryAfterMs: Number(err.retryAfterMs) })
    default: throw err
  }
}

/** Resolves at the first of `events`, after `ms`, or once `stopping` aborts; rejects as the first of `events` to reject does. */
async function heldUntil (events: Array<Promise<unknown>>, ms: number, stopping?: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const over = new AbortController()
  try {
    await Promise.race([...events, new Promise<void>(resolve => {
      timer = setTimeout(resolve, stopping?.aborted === true ? 0 : ms)
      stopping?.addEventListener('abort', () => { resolve() }, { once: true, signal: over.signal })
    })])
  } finally {
    clearTimeout(timer)
    over.abort()
  }
}
