import type { Database, Queryable } from '../db/database.ts';
import { JOBS_CHANNEL } from '../db/channels.ts';
import { notFound } from '../errors.ts';
import { isUuid } from '../ids.ts';

/**
 * Maintenance mode: firing paused cluster-wide or per job. The state lives in the database
 * (maintenance_mode, job_pauses; migration 014), so every scheduler of the cluster honours it on
 * its next firing transaction; a pause waits for the firing transactions in progress (row locks),
 * so when it returns no scheduler fires any more. Workers go on: what is already queued runs.
 */
export interface ClusterPause {
  paused: boolean;
  reason: string | null;
  paused_at: string | null;
  paused_by: string | null;
  resumed_at: string | null;
  resumed_by: string | null;
}

export interface JobPause {
  job_id: string;
  job_name: string;
  paused: boolean;
  reason: string | null;
  paused_at: string | null;
  paused_by: string | null;
  resumed_at: string | null;
  resumed_by: string | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function toClusterPause(r: any): ClusterPause {
  return {
    paused: r.paused,
    reason: r.reason,
    paused_at: iso(r.paused_at),
    paused_by: r.paused_by,
    resumed_at: iso(r.resumed_at),
    resumed_by: r.resumed_by,
  };
}

function toJobPause(r: any): JobPause {
  return {
    job_id: r.job_id,
    job_name: r.job_name,
    paused: r.paused,
    reason: r.reason,
    paused_at: iso(r.paused_at),
    paused_by: r.paused_by,
    resumed_at: iso(r.resumed_at),
    resumed_by: r.resumed_by,
  };
}

export async function getClusterPause(db: Queryable): Promise<ClusterPause> {
  const { rows } = await db.query(`SELECT * FROM maintenance_mode WHERE id`);
  return toClusterPause(rows[0]);
}

/** The jobs paused now (the ones resumed are not listed). */
export async function listPausedJobs(db: Queryable): Promise<JobPause[]> {
  const { rows } = await db.query(
    `SELECT p.*, j.name AS job_name FROM job_pauses p JOIN jobs j ON j.id = p.job_id WHERE p.paused ORDER BY p.paused_at, j.name`,
  );
  return rows.map(toJobPause);
}

export async function getJobPause(db: Queryable, jobId: string): Promise<JobPause> {
  if (!isUuid(jobId)) throw notFound('job', jobId);
  const { rows } = await db.query(
    `SELECT j.id AS job_id, j.name AS job_name, coalesce(p.paused, false) AS paused, p.reason, p.paused_at, p.paused_by, p.resumed_at, p.resumed_by
     FROM jobs j LEFT JOIN job_pauses p ON p.job_id = j.id WHERE j.id = $1`,
    [jobId],
  );
  if (!rows[0]) throw notFound('job', jobId);
  return toJobPause(rows[0]);
}

/**
 * Pauses or resumes firing cluster-wide. Returns the new state and whether it changed (pausing a
 * paused cluster keeps the first pause's time and author, and takes the new reason).
 */
export async function setClusterPause(db: Database, paused: boolean, by: string, reason: string | null): Promise<{ state: ClusterPause; changed: boolean }> {
  const result = await db.transaction(async (tx) => {
    // FOR UPDATE waits for the schedulers' firing transactions, which hold the row FOR SHARE.
    const before = (await tx.query<{ paused: boolean }>(`SELECT paused FROM maintenance_mode WHERE id FOR UPDATE`)).rows[0];
    const changed = before.paused !== paused;
    const { rows } = await tx.query(
      paused
        ? `UPDATE maintenance_mode SET paused = true, reason = $2,
             paused_at = CASE WHEN paused THEN paused_at ELSE now() END,
             paused_by = CASE WHEN paused THEN paused_by ELSE $1 END, updated_at = now()
           WHERE id RETURNING *`
        : `UPDATE maintenance_mode SET paused = false,
             resumed_at = CASE WHEN paused THEN now() ELSE resumed_at END,
             resumed_by = CASE WHEN paused THEN $1 ELSE resumed_by END, updated_at = now()
           WHERE id RETURNING *`,
      paused ? [by, reason] : [by],
    );
    return { state: toClusterPause(rows[0]), changed };
  });
  // Schedulers wake now: on resume they fire (and apply misfire policies) at once.
  if (result.changed) await db.notify(JOBS_CHANNEL, 'maintenance').catch(() => {});
  return result;
}

/** Pauses or resumes one job's firing. */
export async function setJobPause(
  db: Database,
  jobId: string,
  paused: boolean,
  by: string,
  reason: string | null,
): Promise<{ state: JobPause; changed: boolean }> {
  if (!isUuid(jobId)) throw notFound('job', jobId);
  const result = await db.transaction(async (tx) => {
    const job = (await tx.query(`SELECT id FROM jobs WHERE id = $1`, [jobId])).rows[0];
    if (!job) throw notFound('job', jobId);
    // Waits for a scheduler that is firing this job right now (it holds the schedule row).
    await tx.query(`SELECT 1 FROM schedules WHERE job_id = $1 FOR UPDATE`, [jobId]);
    const before = (await tx.query<{ paused: boolean }>(`SELECT paused FROM job_pauses WHERE job_id = $1 FOR UPDATE`, [jobId])).rows[0];
    const wasPaused = before?.paused ?? false;
    if (paused) {
      await tx.query(
        `INSERT INTO job_pauses (job_id, paused, reason, paused_at, paused_by) VALUES ($1, true, $3, now(), $2)
         ON CONFLICT (job_id) DO UPDATE SET reason = EXCLUDED.reason, paused = true,
           paused_at = CASE WHEN job_pauses.paused THEN job_pauses.paused_at ELSE now() END,
           paused_by = CASE WHEN job_pauses.paused THEN job_pauses.paused_by ELSE EXCLUDED.paused_by END`,
        [jobId, by, reason],
      );
    } else if (wasPaused) {
      await tx.query(`UPDATE job_pauses SET paused = false, resumed_at = now(), resumed_by = $2 WHERE job_id = $1`, [jobId, by]);
    }
    return { changed: wasPaused !== paused };
  });
  if (result.changed) await db.notify(JOBS_CHANNEL, jobId).catch(() => {});
  return { state: await getJobPause(db, jobId), changed: result.changed };
}

/** What a scheduler needs in its firing transaction. */
export interface FiringPause {
  clusterPaused: boolean;
  /** The last cluster-wide resume: fire times due before it were missed during the pause. */
  clusterResumedAt: Date | null;
}

/**
 * Read inside the firing transaction, FOR SHARE: a pause in progress waits for this transaction,
 * and this one waits for a pause that is committing, so no fire slips past a committed pause.
 */
export async function readFiringPause(tx: Queryable): Promise<FiringPause> {
  const { rows } = await tx.query<{ paused: boolean; resumed_at: Date | null }>(`SELECT paused, resumed_at FROM maintenance_mode WHERE id FOR SHARE`);
  return { clusterPaused: rows[0]?.paused ?? false, clusterResumedAt: rows[0]?.resumed_at ?? null };
}

/**
 * The pause rows of the jobs a scheduler has just locked. Read after the schedule rows are locked:
 * a job pause holds its schedule row until it commits, so this read sees it.
 */
export async function readJobPauses(tx: Queryable, jobIds: string[]): Promise<Map<string, { paused: boolean; resumedAt: Date | null }>> {
  const out = new Map<string, { paused: boolean; resumedAt: Date | null }>();
  if (jobIds.length === 0) return out;
  const { rows } = await tx.query<{ job_id: string; paused: boolean; resumed_at: Date | null }>(
    `SELECT job_id, paused, resumed_at FROM job_pauses WHERE job_id = ANY($1::uuid[])`,
    [jobIds],
  );
  for (const r of rows) out.set(r.job_id, { paused: r.paused, resumedAt: r.resumed_at });
  return out;
}

/** How long a refused webhook sender is asked to wait (Retry-After) while firing is paused. */
export const PAUSED_RETRY_AFTER_SECONDS = 60;

/**
 * Whether a job may fire now (schedule or webhook): null, or why not. Manual triggers do not ask:
 * an operator who runs a job during maintenance does so on purpose.
 */
export async function firingPausedReason(db: Queryable, jobId: string): Promise<string | null> {
  const { rows } = await db.query<{ cluster: boolean; cluster_reason: string | null; job: boolean | null; job_reason: string | null }>(
    `SELECT m.paused AS cluster, m.reason AS cluster_reason, p.paused AS job, p.reason AS job_reason
     FROM maintenance_mode m LEFT JOIN job_pauses p ON p.job_id = $1 WHERE m.id`,
    [jobId],
  );
  const r = rows[0];
  if (r?.cluster) return `firing is paused cluster-wide (maintenance mode${r.cluster_reason ? `: ${r.cluster_reason}` : ''})`;
  if (r?.job) return `firing of this job is paused${r.job_reason ? ` (${r.job_reason})` : ''}`;
  return null;
}
