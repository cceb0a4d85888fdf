import type { Queryable } from '../db/database.ts';
import type { JobDefinition } from '../jobs/types.ts';
import { firstFireTime } from './next-fire.ts';

/** Changed jobs synced per call. */
export const SYNC_BATCH = 2000;

/**
 * Brings `schedules` in line with `jobs`: a job that is new, edited, enabled or disabled since the
 * scheduler last looked (its version changed) gets its next fire time computed afresh. Several
 * schedulers may do this at once; the version guard makes the result the same.
 * `recentSeconds`: look only at jobs updated that recently (jobs_updated_at_idx, migration 019), a
 * cost that follows the changes, not the job count; without it every job is compared.
 */
export async function syncSchedules(db: Queryable, now: Date, opts: { limit?: number; recentSeconds?: number } = {}): Promise<number> {
  const recent = opts.recentSeconds !== undefined;
  const { rows } = await db.query<{ id: string; version: number; enabled: boolean; definition: JobDefinition }>(
    `SELECT j.id, j.version, j.enabled, j.definition
     FROM jobs j LEFT JOIN schedules s ON s.job_id = j.id
     WHERE (s.job_id IS NULL OR s.job_version < j.version)
       ${recent ? 'AND j.updated_at >= now() - make_interval(secs => $2)' : ''}
     LIMIT $1`,
    recent ? [opts.limit ?? SYNC_BATCH, opts.recentSeconds] : [opts.limit ?? SYNC_BATCH],
  );
  if (rows.length === 0) return 0;
  const next = rows.map((j) => {
    const schedule = j.definition.schedule;
    return j.enabled && schedule ? firstFireTime(schedule, now) : null;
  });
  // One statement for the whole batch: 100,000 new jobs are 50 statements, not 100,000 (issue 19).
  await db.query(
    `INSERT INTO schedules (job_id, job_version, next_fire_at)
     SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[])
     ON CONFLICT (job_id) DO UPDATE SET job_version = EXCLUDED.job_version, next_fire_at = EXCLUDED.next_fire_at, updated_at = now()
     WHERE schedules.job_version < EXCLUDED.job_version`,
    [rows.map((j) => j.id), rows.map((j) => j.version), next],
  );
  return rows.length;
}

/** fixed_delay: the next run is counted from the end of the one that just finished. */
export async function scheduleAfterFinish(db: Queryable, jobId: string, jobVersion: number, finishedAt: Date): Promise<void> {
  await db.query(
    `UPDATE schedules s
     SET next_fire_at = $3::timestamptz + make_interval(secs => (j.definition->'schedule'->>'delay_seconds')::float8),
         updated_at = now()
     FROM jobs j
     WHERE s.job_id = $1 AND j.id = s.job_id AND j.enabled AND s.job_version = $2
       AND j.definition->'schedule'->>'type' = 'fixed_delay'
       AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.job_id = $1 AND e.status IN ('queued', 'running'))`,
    [jobId, jobVersion, finishedAt],
  );
}
