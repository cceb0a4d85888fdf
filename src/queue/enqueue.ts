import type { Database, Queryable } from '../db/database.ts';
import type { JobRecord } from '../jobs/repository.ts';

/** NOTIFY channel that wakes idle workers when work is queued; payload `<execution id> <run_at epoch ms>`. */
export const QUEUE_CHANNEL = 'vecron_queue';

export type TriggerType = 'schedule' | 'manual' | 'webhook';

export interface TriggerInfo {
  type: TriggerType;
  /** When the trigger happened (the fire time for schedules). */
  time: string;
  user?: string | null;
  payload?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, unknown>;
}

export interface EnqueueOptions {
  trigger: TriggerInfo;
  /** Fire time of a scheduled run; (job, fire_time) is unique, so a second insert is a no-op. */
  fireTime?: Date | null;
  runAt?: Date;
  /** overlap_policy 'queue': run after the job's earlier executions, one at a time. */
  serial?: boolean;
  /** Record the fire time as skipped (overlap_policy 'skip') instead of queueing it. */
  skipReason?: string;
}

/**
 * Creates one queued execution of `job` with a snapshot of its definition (step rows are written
 * as the steps start). Returns null when an execution for the same (job, fire time) already exists: that is how
 * several schedulers produce exactly one execution per fire time.
 */
export async function enqueueExecution(tx: Queryable, job: JobRecord, opts: EnqueueOptions): Promise<string | null> {
  const { id: _id, version, created_at, updated_at, created_by, updated_by, ...definition } = job;
  // One statement: the execution and the wake-up NOTIFY (sent at commit) together.
  const { rows } = await tx.query<{ id: string }>(
    `WITH e AS (
       INSERT INTO executions (job_id, job_version, job_snapshot, trigger_type, trigger, fire_time, max_attempts, run_at,
                               serial, status, error, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9,
               CASE WHEN $10::text IS NULL THEN 'queued' ELSE 'skipped' END,
               CASE WHEN $10::text IS NULL THEN NULL ELSE jsonb_build_object('code', 'overlap_skipped', 'message', $10::text) END,
               CASE WHEN $10::text IS NULL THEN NULL ELSE now() END)
       ON CONFLICT (job_id, fire_time) WHERE fire_time IS NOT NULL DO NOTHING
       RETURNING id, status, run_at
     )
     SELECT e.id, CASE WHEN e.status = 'queued'
                       THEN pg_notify($11, e.id::text || ' ' || floor(extract(epoch FROM e.run_at) * 1000)::bigint::text) END AS notified
     FROM e`,
    [
      job.id,
      version,
      JSON.stringify(definition),
      opts.trigger.type,
      JSON.stringify(opts.trigger),
      opts.fireTime ?? null,
      job.max_retries + 1,
      opts.runAt ?? null,
      opts.serial ?? false,
      opts.skipReason ?? null,
      QUEUE_CHANNEL,
    ],
  );
  return rows[0]?.id ?? null;
}

/** Enqueues outside any transaction (the single statement is atomic by itself). */
export function enqueue(db: Database, job: JobRecord, opts: EnqueueOptions): Promise<string | null> {
  return enqueueExecution(db, job, opts);
}
