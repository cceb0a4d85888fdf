import type { Queryable } from '../db/database.ts';
import { QUEUE_CHANNEL } from '../db/channels.ts';
import type { JobRecord } from '../jobs/repository.ts';
import { executionLimits } from '../limits/key.ts';
import { startTriggerSpan } from '../tracing/spans.ts';
import type { EnqueueOptions } from './enqueue.ts';
import { eventsCte } from './events.ts';
import { EXECUTION_ROW_VALUES, executionRowValues, jobSnapshotOf } from './execution-row.ts';

/**
 * The scheduler's form of enqueueExecution (enqueue.ts): many fire times, of any jobs, in one
 * statement, with the same rows, events and NOTIFYs as that many enqueueExecution calls (issue 19:
 * a statement per fire time made 1,000 fires per second cost 1,000 round trips per second). Like
 * enqueueExecution, a (job, fire time) that already has an execution is left alone (ON CONFLICT DO
 * NOTHING): that is how several schedulers produce exactly one execution per fire time.
 */
const ENQUEUE_MANY_SQL = `WITH i AS (
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::jsonb[], $4::text[], $5::jsonb[], $6::timestamptz[], $7::int[],
                            $8::timestamptz[], $9::boolean[], $10::jsonb[], $11::text[], $12::int[], $13::text[], $14::int[], $15::int[])
         WITH ORDINALITY AS i(job_id, job_version, job_snapshot, trigger_type, trigger, fire_time, max_attempts, run_at,
                              serial, skip, concurrency_key, concurrency_limit, rate_key, rate_limit, rate_interval_seconds, n)
     ), e AS (
       INSERT INTO executions (job_id, job_version, job_snapshot, trigger_type, trigger, fire_time, max_attempts, run_at,
                               serial, status, error, finished_at,
                               concurrency_key, concurrency_limit, rate_key, rate_limit, rate_interval_seconds)
       SELECT job_id, job_version, job_snapshot, trigger_type, trigger, fire_time, max_attempts, coalesce(run_at, now()), serial,
              CASE WHEN skip IS NULL THEN 'queued' ELSE 'skipped' END, skip, CASE WHEN skip IS NULL THEN NULL ELSE now() END,
              concurrency_key, concurrency_limit, rate_key, rate_limit, rate_interval_seconds
       FROM i ORDER BY n
       ON CONFLICT (job_id, fire_time) WHERE fire_time IS NOT NULL DO NOTHING
       RETURNING id, job_id, fire_time, status, run_at, created_at, error, concurrency_key, rate_key
     ), ${eventsCte([{ from: 'e', kind: 'execution', executionId: 'e.id', jobId: 'e.job_id', status: 'e.status', at: 'e.created_at', reason: `e.error->>'code'`, error: 'e.error', order: 'extract(epoch FROM e.fire_time) * 1000', phase: 0 }])}
     SELECT e.id, e.job_id, e.fire_time, CASE WHEN e.status = 'queued'
                       -- No id in the payload ('*'): PostgreSQL sends identical payloads of one transaction
                       -- once, so a burst of 1,000 fire times on one second wakes each worker once, not
                       -- 1,000 times (workers read only the run_at and the limits flag).
                       THEN pg_notify('${QUEUE_CHANNEL}', '* ' || floor(extract(epoch FROM e.run_at) * 1000)::bigint::text
                                                          || CASE WHEN e.concurrency_key IS NULL AND e.rate_key IS NULL THEN '' ELSE ' L' END) END AS notified
     FROM e`;

export interface EnqueueItem {
  job: JobRecord;
  /** As for enqueueExecution; every item of a batch has a fire time (the scheduler's). */
  opts: EnqueueOptions & { fireTime: Date };
}

/** Creates the executions of `items` in one statement; returns how many were new. */
export async function enqueueExecutions(db: Queryable, items: EnqueueItem[]): Promise<number> {
  if (items.length === 0) return 0;
  const cols: unknown[][] = Array.from({ length: EXECUTION_ROW_VALUES }, () => []);
  const traces: (ReturnType<typeof startTriggerSpan> | null)[] = [];
  const snapshots = new Map<JobRecord, string>();
  for (const { job, opts } of items) {
    let snapshot = snapshots.get(job);
    if (snapshot === undefined) {
      snapshots.set(job, (snapshot = jobSnapshotOf(job)));
    }
    const limits = opts.skip ? null : await executionLimits(db, job, opts.trigger);
    const traced = startTriggerSpan(job, opts.trigger.type, opts.fireTime, opts.traceHeaders ?? null);
    traces.push(traced);
    const trigger = traced ? { ...opts.trigger, ...traced.carrier } : opts.trigger;
    const values = executionRowValues(job, snapshot, opts, trigger, limits);
    values.forEach((v, k) => cols[k].push(v));
  }
  const { rows } = await db.query<{ id: string; job_id: string; fire_time: Date }>(ENQUEUE_MANY_SQL, cols);
  if (traces.some((t) => t)) {
    const ids = new Map(rows.map((r) => [`${r.job_id} ${new Date(r.fire_time).getTime()}`, r.id]));
    items.forEach(({ job, opts }, k) => {
      const id = ids.get(`${job.id} ${opts.fireTime.getTime()}`) ?? null;
      traces[k]?.end(id, id ? (opts.skip ? 'skipped' : 'queued') : null);
    });
  }
  return rows.length;
}
