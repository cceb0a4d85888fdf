/**
 * Whether this process traces, and the fields a log line gets from the active span. Kept apart
 * from the SDK setup (setup.ts) so the logger and the hot paths import only @opentelemetry/api:
 * with tracing off every helper in src/tracing returns at its first line (no span, no context
 * switch, no allocation beyond the log mixin's empty object).
 */
import { context, createContextKey, trace, type Tracer } from '@opentelemetry/api';

let tracer: Tracer | null = null;

/** The tracer while tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT set), else null. */
export const activeTracer = (): Tracer | null => tracer;
export const tracingOn = (): boolean => tracer !== null;

/** Set by setup.ts only. */
export function setTracer(t: Tracer | null): void {
  tracer = t;
}

/**
 * The masker of the execution whose span is active (src/engine/masking.ts), carried in the
 * context so that spans started far from the engine (host calls) mask what they record too.
 */
export const MASK_KEY = createContextKey('vecron.mask');
export type MaskFn = (v: unknown) => unknown;

/** `v` masked with the masker of the active context (unchanged when there is none). */
export function maskWithActive(v: string): string {
  const mask = context.active().getValue(MASK_KEY) as MaskFn | undefined;
  return mask ? String(mask(v)) : v;
}

/**
 * pino mixin: `trace_id` and `span_id` of the active span, so the log lines of an execution can
 * be found from its trace and back. A new object each time: pino merges the line's fields into it.
 */
export function traceLogFields(): Record<string, string> {
  if (tracer === null) return {};
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const sc = span.spanContext();
  return { trace_id: sc.traceId, span_id: sc.spanId };
}
