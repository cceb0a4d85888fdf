import type { Queryable } from '../db/database.ts';
import { QUEUE_CHANNEL } from '../db/channels.ts';
import type { JobRecord } from '../jobs/repository.ts';
import { executionLimits } from '../limits/key.ts';
import { eventsCte } from './events.ts';
import { executionRowValues, jobSnapshotOf } from './execution-row.ts';
import type { TraceCarrier } from '../tracing/propagate.ts';
import { startTriggerSpan } from '../tracing/spans.ts';

export type TriggerType = 'schedule' | 'manual' | 'webhook';

export interface TriggerInfo {
  type: TriggerType;
  /** When the trigger happened (the fire time for schedules). */
  time: string;
  user?: string | null;
  payload?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, unknown>;
  /** A scheduled run that fired late under misfire_policy fire_once. */
  misfired?: boolean;
}

/** Why a fire time was recorded as skipped instead of run. */
export interface SkipReason {
  /** `overlap_skipped`: the previous execution was still going (overlap_policy skip); `misfire`: the fire time was missed (misfire_policy). */
  code: 'overlap_skipped' | 'misfire';
  message: string;
}

export interface EnqueueOptions {
  trigger: TriggerInfo;
  /** Fire time of a scheduled run; (job, fire_time) is unique, so a second insert is a no-op. */
  fireTime?: Date | null;
  runAt?: Date;
  /** overlap_policy 'queue': run after the job's earlier executions, one at a time. */
  serial?: boolean;
  /** `skip` instead of `enqueue`: the fire time is recorded as a skipped execution, not run. */
  skip?: SkipReason;
  /** The caller's `traceparent`/`tracestate` (manual and webhook triggers): the trace to continue. */
  traceHeaders?: TraceCarrier | null;
}

const ENQUEUE_SQL = `WITH e AS (
       INSERT INTO executions (job_id, job_version, job_snapshot, trigger_type, trigger, fire_time, max_attempts, run_at,
                               serial, status, error, finished_at,
                               concurrency_key, concurrency_limit, rate_key, rate_limit, rate_interval_seconds)
       VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9,
               CASE WHEN $10::jsonb IS NULL THEN 'queued' ELSE 'skipped' END, $10::jsonb,
               CASE WHEN $10::jsonb IS NULL THEN NULL ELSE now() END,
               $11, $12, $13, $14, $15)
       ON CONFLICT (job_id, fire_time) WHERE fire_time IS NOT NULL DO NOTHING
       RETURNING id, job_id, status, run_at, created_at, error
     ), ${eventsCte([{ from: 'e', kind: 'execution', executionId: 'e.id', jobId: 'e.job_id', status: 'e.status', at: 'e.created_at', reason: `e.error->>'code'`, error: 'e.error', phase: 0 }])}
     SELECT e.id, CASE WHEN e.status = 'queued'
                       THEN pg_notify('${QUEUE_CHANNEL}', e.id::text || ' ' || floor(extract(epoch FROM e.run_at) * 1000)::bigint::text
                                                          || CASE WHEN $11::text IS NULL AND $13::text IS NULL THEN '' ELSE ' L' END) END AS notified
     FROM e`;

/**
 * `enqueue` (-> queued) or `skip` (-> skipped): creates one execution of `job` with a snapshot of
 * its definition (step rows are written as the steps start), its event and, when queued, the
 * NOTIFY that wakes a worker (sent at commit), in one statement. Returns null when an execution
 * for the same (job, fire time) already exists: that is how several schedulers produce exactly one
 * execution per fire time. A job's limits (src/limits) are copied onto the execution, its
 * concurrency key rendered; the NOTIFY of a limited execution ends in ` L` (the worker's limited
 * claim path, src/state/claim-limited.ts).
 */
export async function enqueueExecution(db: Queryable, job: JobRecord, opts: EnqueueOptions): Promise<string | null> {
  const limits = opts.skip ? null : await executionLimits(db, job, opts.trigger);
  // The trigger's span while tracing is on (null otherwise); its context is stored with the trigger.
  const traced = startTriggerSpan(job, opts.trigger.type, opts.fireTime ?? null, opts.traceHeaders ?? null);
  const trigger = traced ? { ...opts.trigger, ...traced.carrier } : opts.trigger;
  const { rows } = await db.query<{ id: string }>(ENQUEUE_SQL, executionRowValues(job, jobSnapshotOf(job), opts, trigger, limits));
  traced?.end(rows[0]?.id ?? null, rows[0] ? (opts.skip ? 'skipped' : 'queued') : null);
  return rows[0]?.id ?? null;
}
