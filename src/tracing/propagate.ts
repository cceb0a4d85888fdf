/**
 * W3C trace context in and out (https://www.w3.org/TR/trace-context/): the `traceparent` (and
 * `tracestate`) of an incoming trigger, of an execution's stored trigger, and of the outbound
 * requests of http steps and of the http_request host call. Only while tracing is on: with it off
 * nothing is read, stored or sent.
 */
import { context, propagation, ROOT_CONTEXT, trace, type Context } from '@opentelemetry/api';
import { tracingOn } from './state.ts';

/** The trace-context headers of a request, as stored with an execution's trigger. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

const getter = {
  keys: (c: TraceCarrier) => Object.keys(c),
  get: (c: TraceCarrier, k: string) => (k === 'traceparent' || k === 'tracestate' ? c[k] : undefined),
};

/** The trace-context headers of an incoming request (Fastify's lower-cased headers); null without any. */
export function traceHeadersOf(headers: Record<string, unknown>): TraceCarrier | null {
  if (!tracingOn()) return null;
  const tp = headers.traceparent;
  if (typeof tp !== 'string') return null;
  const ts = headers.tracestate;
  return typeof ts === 'string' ? { traceparent: tp, tracestate: ts } : { traceparent: tp };
}

/** The context a carrier continues, or null when it holds no valid trace context. */
export function contextFrom(carrier: TraceCarrier | null | undefined): Context | null {
  if (!carrier || typeof carrier.traceparent !== 'string') return null;
  const ctx = propagation.extract(ROOT_CONTEXT, carrier, getter);
  const sc = trace.getSpanContext(ctx);
  return sc && trace.isSpanContextValid(sc) ? ctx : null;
}

/** The carrier of a context's span (to store it with an execution). */
export function carrierOf(ctx: Context): TraceCarrier {
  const out: Record<string, string> = {};
  propagation.inject(ctx, out);
  return out;
}

/**
 * The headers that continue the active span's trace in an outbound request, or null (tracing off,
 * or no span active). Documented in docs/operations.md: an operator sees this header leave.
 */
export function outboundTraceHeaders(): Record<string, string> | null {
  if (!tracingOn()) return null;
  const ctx = context.active();
  if (!trace.getSpan(ctx)) return null;
  const out: Record<string, string> = {};
  propagation.inject(ctx, out);
  return out.traceparent ? out : null;
}

/** `headers` plus the outbound trace headers, where the request does not set them itself. */
export function withTraceHeaders(headers: Record<string, string>): Record<string, string> {
  const t = outboundTraceHeaders();
  if (!t) return headers;
  const out = { ...headers };
  for (const [k, v] of Object.entries(t)) if (out[k] === undefined) out[k] = v;
  return out;
}
