/**
 * The spans of an execution (docs/operations.md, "Tracing"):
 *
 *   vecron.fire | vecron.trigger      the fire time (scheduler) or the manual/webhook call; a caller's
 *   │                                 `traceparent` makes it a child of the caller's span
 *   └─ vecron.execution               one per attempt, in whichever worker process claimed it: its
 *      │                              parent is read from the trace context stored with the trigger
 *      └─ vecron.step                 one per step run (its in-step retries included)
 *         └─ vecron.host_call         one per privileged host call of a wasm step (host-calls.ts)
 *
 * One trace per execution, across attempts and processes. Attributes hold ids, types, statuses
 * and error codes only (never a message, a config or an output), and a host call's target goes
 * through the execution's masker. Every function returns at once when tracing is off.
 */
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { activeTracer, MASK_KEY, type MaskFn } from './state.ts';
import { carrierOf, contextFrom, type TraceCarrier } from './propagate.ts';

export const ATTR = {
  jobId: 'vecron.job.id',
  jobName: 'vecron.job.name',
  executionId: 'vecron.execution.id',
  attempt: 'vecron.execution.attempt',
  executionStatus: 'vecron.execution.status',
  triggerType: 'vecron.trigger.type',
  fireTime: 'vecron.fire_time',
  stepId: 'vecron.step.id',
  stepType: 'vecron.step.type',
  stepStatus: 'vecron.step.status',
  errorCode: 'vecron.error.code',
  hostFunction: 'vecron.host_call.function',
  hostTarget: 'vecron.host_call.target',
  hostOutcome: 'vecron.host_call.outcome',
  hostServed: 'vecron.host_call.served',
  hostSeq: 'vecron.host_call.seq',
  hostPermission: 'vecron.host_call.permission',
} as const;

function fail(span: Span, code: string): void {
  span.setAttribute(ATTR.errorCode, code);
  // The code, not the message: a message may quote a value the masker does not know of.
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}

export interface TriggerTrace {
  /** To store with the execution's trigger: how the worker that claims it continues the trace. */
  carrier: TraceCarrier;
  end(executionId: string | null, status: string | null): void;
}

/**
 * The span of a fire time or a trigger call, started as its execution is enqueued. A scheduled
 * execution's trace starts at its fire time (the span runs from the fire time to the insert, so a
 * late scheduler shows); a manual or webhook trigger continues `incoming` when it is valid.
 */
export function startTriggerSpan(job: { id: string; name: string }, type: string, fireTime: Date | null, incoming: TraceCarrier | null): TriggerTrace | null {
  const tracer = activeTracer();
  if (!tracer) return null;
  const scheduled = type === 'schedule';
  const parent = (!scheduled && contextFrom(incoming)) || ROOT_CONTEXT;
  const attributes: Attributes = { [ATTR.jobId]: job.id, [ATTR.jobName]: job.name, [ATTR.triggerType]: type };
  if (fireTime) attributes[ATTR.fireTime] = fireTime.toISOString();
  const span = tracer.startSpan(
    scheduled ? 'vecron.fire' : 'vecron.trigger',
    { kind: scheduled ? SpanKind.INTERNAL : SpanKind.SERVER, attributes, ...(scheduled && fireTime ? { startTime: fireTime } : {}) },
    parent,
  );
  return {
    carrier: carrierOf(trace.setSpan(parent, span)),
    end(executionId, status) {
      if (executionId) span.setAttribute(ATTR.executionId, executionId);
      if (status) span.setAttribute(ATTR.executionStatus, status);
      // A fire enqueued ahead of its time ends where it starts (the span cannot end before it began).
      span.end(fireTime && fireTime.getTime() > Date.now() ? fireTime : undefined);
    },
  };
}

export interface ExecutionTrace {
  span: Span;
  ctx: Context;
}

interface ClaimedLike {
  id: string;
  job_id: string;
  attempt: number;
  trigger_type: string;
  trigger: unknown;
}

/** The span of one attempt of an execution, a child of its trigger's span (stored with the trigger). */
export function startExecutionSpan(exec: ClaimedLike, jobName: string): ExecutionTrace | null {
  const tracer = activeTracer();
  if (!tracer) return null;
  const parent = contextFrom(exec.trigger as TraceCarrier | null) ?? ROOT_CONTEXT;
  const span = tracer.startSpan(
    'vecron.execution',
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        [ATTR.jobId]: exec.job_id,
        [ATTR.jobName]: jobName,
        [ATTR.executionId]: exec.id,
        [ATTR.attempt]: exec.attempt,
        [ATTR.triggerType]: exec.trigger_type,
      },
    },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Runs `fn` with the execution's span active (log lines get its ids; steps become its children). */
export function inExecution<T>(t: ExecutionTrace | null, fn: () => Promise<T>): Promise<T> {
  return t ? context.with(t.ctx, fn) : fn();
}

/** Ends an attempt's span with the status it left the execution in (queued: to be retried). */
export function endExecutionSpan(t: ExecutionTrace | null, status: string, errorCode?: string | null): void {
  if (!t) return;
  t.span.setAttribute(ATTR.executionStatus, status);
  if (errorCode) fail(t.span, errorCode);
  t.span.end();
}

/**
 * Runs one step inside its span. `result` says how the step ended from what `fn` returned; a
 * throw (a lost lease, a shutdown) ends the span as `stopped`. The execution's masker rides in the
 * context, for the host-call spans below this one.
 */
export async function traceStep<T>(
  step: { id: string; type: string },
  attempt: number,
  mask: MaskFn,
  fn: () => Promise<T>,
  result: (r: T) => { status: string; errorCode?: string },
): Promise<T> {
  const tracer = activeTracer();
  if (!tracer) return fn();
  const parent = context.active();
  const span = tracer.startSpan('vecron.step', { attributes: { [ATTR.stepId]: step.id, [ATTR.stepType]: step.type, [ATTR.attempt]: attempt } }, parent);
  try {
    const r = await context.with(trace.setSpan(parent, span).setValue(MASK_KEY, mask), fn);
    const { status, errorCode } = result(r);
    span.setAttribute(ATTR.stepStatus, status);
    if (errorCode) fail(span, errorCode);
    return r;
  } catch (err) {
    span.setAttribute(ATTR.stepStatus, 'stopped');
    fail(span, (err as { kind?: string })?.kind ?? 'stopped');
    throw err;
  } finally {
    span.end();
  }
}
