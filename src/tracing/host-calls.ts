/**
 * Spans of a wasm step's privileged host calls, children of the step's span:
 * - a call bridged to the main thread (src/wasm/host/dispatch.ts) gets a live span around its
 *   serving, active while it runs, so the http_request call's outbound `traceparent` names it;
 * - a call served inside the worker (time, keyless crypto) never reaches the main thread while the
 *   run goes on; its span is made after the run from the run's host-call record
 *   (src/wasm/runtime/host-record.ts), with the start and duration the worker measured.
 * The target (a URL, `datasource/table`, a path) is masked with the execution's masker.
 */
import { context, trace, type Context } from '@opentelemetry/api';
import type { HostAnswer, HostCallRecord, HostDispatch } from '../wasm/host/types.ts';
import { activeTracer, MASK_KEY, type MaskFn } from './state.ts';
import { ATTR } from './spans.ts';

const masked = (ctx: Context, s: string): string => {
  const mask = ctx.getValue(MASK_KEY) as MaskFn | undefined;
  return mask ? String(mask(s)) : s;
};

/**
 * `dispatch` with a span per call. The parent is the context active when the run's dispatch is
 * made (the step's): the bridge's message handler that calls it later runs outside that context.
 */
export function traceDispatch(dispatch: HostDispatch): HostDispatch {
  const tracer = activeTracer();
  if (!tracer) return dispatch;
  const parent = context.active();
  if (!trace.getSpan(parent)) return dispatch;
  return async (fn, request, signal): Promise<HostAnswer> => {
    const span = tracer.startSpan('vecron.host_call', { attributes: { [ATTR.hostFunction]: String(fn).slice(0, 100), [ATTR.hostServed]: 'host' } }, parent);
    try {
      const a = await context.with(trace.setSpan(parent, span), () => dispatch(fn, request, signal));
      if (a.target) span.setAttribute(ATTR.hostTarget, masked(parent, a.target));
      span.setAttribute(ATTR.hostOutcome, a.outcome);
      if (a.permission) span.setAttribute(ATTR.hostPermission, a.permission);
      if (a.outcome !== 'ok') span.setAttribute(ATTR.errorCode, a.outcome);
      return a;
    } finally {
      span.end();
    }
  };
}

/** Spans for the calls of `records` the worker served itself, under the active (step) span. */
export function spansFromRecord(records: readonly HostCallRecord[]): void {
  const tracer = activeTracer();
  if (!tracer || records.length === 0) return;
  const parent = context.active();
  if (!trace.getSpan(parent)) return;
  for (const r of records) {
    if (r.served !== 'worker') continue; // bridged calls had their live span
    const start = Date.parse(r.at);
    if (!Number.isFinite(start)) continue;
    const attributes: Record<string, string | number> = {
      [ATTR.hostFunction]: r.function,
      [ATTR.hostServed]: 'worker',
      [ATTR.hostSeq]: r.seq,
      [ATTR.hostOutcome]: r.outcome,
    };
    if (r.target) attributes[ATTR.hostTarget] = masked(parent, r.target);
    if (r.permission) attributes[ATTR.hostPermission] = r.permission;
    if (r.outcome !== 'ok') attributes[ATTR.errorCode] = r.outcome;
    const span = tracer.startSpan('vecron.host_call', { startTime: start, attributes }, parent);
    span.end(start + r.duration_us / 1000);
  }
}
