import { ROOT_CONTEXT, SpanStatusCode, TraceFlags, isSpanContextValid, trace } from '@opentelemetry/api'
import { VERSION } from './version.js'
import { randomHex } from '../protocols/task/random-hex.js'
import type { Attributes, Context, Span } from '@opentelemetry/api'

/** A W3C trace context `traceparent`: version 00, trace id, parent span id, flags. */
export const TRACEPARENT = /^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$/

/**
 * Spans of a task's life on each peer: submit, claim, run (whose subtasks are its children) and
 * commit. The task carries its submit span's `traceparent` in its record, so every peer's spans join
 * one trace. Nothing is recorded unless an SDK is registered (exportTraces): the API's no-op tracer
 * passes contexts through and costs next to nothing.
 */
const tracer = () => trace.getTracer('agentmesh', VERSION)

/** The context a traceparent names (the root context when there is none or it is malformed). */
export function contextOf (traceparent: string | undefined): Context {
  const m = traceparent === undefined ? null : TRACEPARENT.exec(traceparent)
  if (m === null) return ROOT_CONTEXT
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1] as string, spanId: m[2] as string, traceFlags: parseInt(m[3] as string, 16), isRemote: true })
}

/** A span as a traceparent; one with no valid context (no SDK, no parent) gets fresh random ids, so a trace always exists. */
export function traceparentOf (span: Span): string {
  const sc = span.spanContext()
  if (!isSpanContextValid(sc)) return `00-${randomHex(16)}-${randomHex(8)}-01`
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED) === 0 ? '00' : '01'}`
}

export function startSpan (name: string, parent: string | undefined, attributes: Attributes = {}): Span {
  return tracer().startSpan(name, { attributes }, contextOf(parent))
}

/** Runs `fn` in a span that ends with it, marked as an error when it throws. */
export async function inSpan<T> (name: string, parent: string | undefined, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = startSpan(name, parent, attributes)
  try {
    return await fn(span)
  } catch (err: any) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(err?.message ?? err) })
    throw err
  } finally {
    span.end()
  }
}

/**
 * Turns on export when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set:
 * OTLP over HTTP, batched, the exporter's own OTEL_* variables apply. Loaded only then, so a node
 * that exports nothing loads none of the SDK. Answers the flush-and-stop for shutdown.
 */
export async function exportTraces (env: NodeJS.ProcessEnv, peerId: string): Promise<(() => Promise<void>) | undefined> {
  if ((env.OTEL_EXPORTER_OTLP_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? '') === '' || env.OTEL_SDK_DISABLED === 'true') return undefined
  const [{ TracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources')
  ])
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? 'agentmesh', 'service.version': VERSION, 'service.instance.id': peerId }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), scheduledDelayMillis: envMs(env.OTEL_BSP_SCHEDULE_DELAY) ?? 5_000 })]
  })
  trace.setGlobalTracerProvider(provider)
  return async () => {
    await provider.shutdown().catch(() => {})
    trace.disable()
  }
}

/** A standard OTEL_* delay in ms, when it is a positive whole number. */
function envMs (value: string | undefined): number | undefined {
  const n = Number(value)
  return value !== undefined && Number.isSafeInteger(n) && n > 0 ? n : undefined
}
