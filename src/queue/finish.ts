import type { Queryable } from '../db/database.ts';

/** Exponential backoff with "equal jitter": half fixed, half random, capped at one hour. */
export function retryDelayMs(baseSeconds: number, attempt: number, random = Math.random): number {
  const exp = Math.min(3600_000, baseSeconds * 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

export type Outcome =
  /** `lastStep`: the final step's result, written in the same statement as the execution's status. */
  | { status: 'succeeded'; lastStep?: { stepId: string; completedAt: Date; outputJson: string }; contextJson?: string | null }
  | { status: 'failed'; error: { code: string; message: string; retryable: boolean; step_id?: string; details?: unknown } };

export interface FinishResult {
  /** Final status, or 'queued' when a retry was scheduled. */
  status: 'succeeded' | 'failed' | 'dead_lettered' | 'queued';
  runAt?: Date;
  /** False when this worker no longer owned the execution (lease lost): nothing was written. */
  owned: boolean;
}

/**
 * Records how an attempt ended. Every write is fenced on `locked_by`: a worker that lost its lease
 * (another worker took over) cannot overwrite the new owner's state.
 */
export async function finishAttempt(
  db: Queryable,
  exec: { id: string; attempt: number; max_attempts: number },
  workerId: string,
  outcome: Outcome,
  backoffSeconds: number,
): Promise<FinishResult> {
  if (outcome.status === 'succeeded') {
    const last = outcome.lastStep;
    // One statement: the last step's result, the final status, and their status events.
    const r = await db.query(
      `WITH s AS (
         UPDATE step_runs SET status = 'succeeded', completed_at = $4, output = $5
         WHERE $3::text IS NOT NULL AND execution_id = $1 AND step_id = $3
           AND EXISTS (SELECT 1 FROM executions WHERE id = $1 AND locked_by = $2 AND status = 'running')
         RETURNING execution_id, step_id
       ), u AS (
         UPDATE executions SET status = 'succeeded', finished_at = now(), locked_by = NULL, lease_expires_at = NULL, error = NULL,
                context = coalesce($6::jsonb, context)
         WHERE id = $1 AND locked_by = $2 AND status = 'running'
         RETURNING id, job_id, finished_at
       )
       SELECT u.id,
              (SELECT pg_notify('vecron_events', json_build_object('kind', 'step', 'execution_id', u.id, 'job_id', u.job_id,
                       'step_id', s.step_id, 'status', 'succeeded', 'at', $4::timestamptz)::text) FROM s) AS ev1,
              pg_notify('vecron_events', json_build_object('kind', 'execution', 'execution_id', u.id, 'job_id', u.job_id,
                       'status', 'succeeded', 'at', u.finished_at)::text) AS ev2
       FROM u`,
      [exec.id, workerId, last?.stepId ?? null, last?.completedAt ?? null, last?.outputJson ?? null, outcome.contextJson ?? null],
    );
    return { status: 'succeeded', owned: r.rows.length > 0 };
  }
  const err = outcome.error;
  const attemptEntry = JSON.stringify([{ attempt: exec.attempt, at: new Date().toISOString(), error: err }]);
  if (err.retryable && exec.attempt < exec.max_attempts) {
    const runAt = new Date(Date.now() + retryDelayMs(backoffSeconds, exec.attempt));
    const r = await db.query(
      `UPDATE executions SET status = 'queued', run_at = $3, locked_by = NULL, lease_expires_at = NULL,
              error = $4, attempts = attempts || $5::jsonb
       WHERE id = $1 AND locked_by = $2 AND status = 'running'`,
      [exec.id, workerId, runAt, JSON.stringify(err), attemptEntry],
    );
    return { status: 'queued', runAt, owned: r.rowCount > 0 };
  }
  // Out of attempts: dead-lettered (waits for an operator). Not retryable: failed at once.
  const status = err.retryable ? 'dead_lettered' : 'failed';
  const r = await db.query(
    `UPDATE executions SET status = $3, finished_at = now(), locked_by = NULL, lease_expires_at = NULL,
            error = $4, attempts = attempts || $5::jsonb
     WHERE id = $1 AND locked_by = $2 AND status = 'running'`,
    [exec.id, workerId, status, JSON.stringify(err), attemptEntry],
  );
  return { status, owned: r.rowCount > 0 };
}

/** Graceful shutdown: give an unfinished execution back without counting the attempt. */
export async function handBack(db: Queryable, executionId: string, workerId: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE executions SET status = 'queued', run_at = now(), locked_by = NULL, lease_expires_at = NULL,
            attempt = greatest(attempt - 1, 0)
     WHERE id = $1 AND locked_by = $2 AND status = 'running'`,
    [executionId, workerId],
  );
  if (r.rowCount > 0) {
    await db.query(`UPDATE step_runs SET status = 'pending', started_at = NULL WHERE execution_id = $1 AND status = 'running'`, [executionId]);
  }
  return r.rowCount > 0;
}

/** Operator action: run a failed or dead-lettered execution again from its failed step. */
export async function requeueExecution(db: Queryable, executionId: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE executions SET status = 'queued', run_at = now(), finished_at = NULL, max_attempts = attempt + 1
     WHERE id = $1 AND status IN ('failed', 'dead_lettered')`,
    [executionId],
  );
  return r.rowCount > 0;
}
