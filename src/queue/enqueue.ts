import type { Database, Queryable } from '../db/database.ts';
import type { JobRecord } from '../jobs/repository.ts';

/** NOTIFY channel that wakes idle workers when work is queued. */
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
 * Creates one queued execution of `job` with a snapshot of its definition and a pending row per
 * step. Returns null when an execution for the same (job, fire time) already exists: that is how
 * several schedulers produce exactly one execution per fire time.
 */
export async function enqueueExecution(tx: Queryable, job: JobRecord, opts: EnqueueOptions): Promise<string | null> {
  const { id: _id, version, created_at, updated_at, created_by, updated_by, ...definition } = job;
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO executions (job_id, job_version, job_snapshot, trigger_type, trigger, fire_time, max_attempts, run_at,
                             serial, status, error, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9,
             CASE WHEN $10::text IS NULL THEN 'queued' ELSE 'skipped' END,
             CASE WHEN $10::text IS NULL THEN NULL ELSE jsonb_build_object('code', 'overlap_skipped', 'message', $10::text) END,
             CASE WHEN $10::text IS NULL THEN NULL ELSE now() END)
     ON CONFLICT (job_id, fire_time) DO NOTHING
     RETURNING id`,
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
    ],
  );
  const id = rows[0]?.id;
  if (!id) return null;
  if (opts.skipReason) return id;
  const steps = job.steps;
  await tx.query(
    `INSERT INTO step_runs (execution_id, step_id, position, type)
     SELECT $1, s.step_id, s.position, s.type
     FROM unnest($2::text[], $3::int[], $4::text[]) AS s(step_id, position, type)`,
    [id, steps.map((s) => s.id), steps.map((_, i) => i), steps.map((s) => s.type)],
  );
  await tx.query('SELECT pg_notify($1, $2)', [QUEUE_CHANNEL, id]);
  return id;
}

/** Enqueues in its own transaction (execution and step rows appear together or not at all). */
export function enqueue(db: Database, job: JobRecord, opts: EnqueueOptions): Promise<string | null> {
  return db.transaction((tx) => enqueueExecution(tx, job, opts));
}
