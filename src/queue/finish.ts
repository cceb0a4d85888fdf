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

export interface Success {
  executionId: string;
  lastStep?: { stepId: string; completedAt: Date; outputJson: string };
  contextJson?: string | null;
}

/**
 * Records several successful executions of one worker in one statement: for each, the last step's
 * result, the final status and their status events. Returns, in input order, whether the worker
 * still owned each execution (writes are fenced on `locked_by`; a lost one is left untouched).
 */
export async function recordSuccesses(db: Queryable, workerId: string, items: Success[]): Promise<boolean[]> {
  const { rows } = await db.query<{ id: string }>(
    `WITH input AS (
       SELECT * FROM unnest($2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[])
                AS i(id, step_id, completed_at, output, context)
     ), u AS (
       UPDATE executions e
       SET status = 'succeeded', finished_at = now(), locked_by = NULL, lease_expires_at = NULL, error = NULL,
           context = coalesce(i.context::jsonb, e.context)
       FROM input i
       WHERE e.id = i.id AND e.locked_by = $1 AND e.status = 'running'
       RETURNING e.id, e.job_id, e.finished_at
     ), s AS (
       UPDATE step_runs r SET status = 'succeeded', completed_at = i.completed_at, output = i.output::jsonb
       FROM input i JOIN u ON u.id = i.id
       WHERE r.execution_id = i.id AND r.step_id = i.step_id
       RETURNING r.execution_id, r.step_id, r.completed_at
     )
     SELECT u.id,
            (SELECT pg_notify('vecron_events', json_build_object('kind', 'step', 'execution_id', u.id, 'job_id', u.job_id,
                     'step_id', s.step_id, 'status', 'succeeded', 'at', s.completed_at)::text)
             FROM s WHERE s.execution_id = u.id) AS ev1,
            pg_notify('vecron_events', json_build_object('kind', 'execution', 'execution_id', u.id, 'job_id', u.job_id,
                     'status', 'succeeded', 'at', u.finished_at)::text) AS ev2
     FROM u`,
    [
      workerId,
      items.map((x) => x.executionId),
      items.map((x) => x.lastStep?.stepId ?? null),
      items.map((x) => x.lastStep?.completedAt ?? null),
      items.map((x) => x.lastStep?.outputJson ?? null),
      items.map((x) => x.contextJson ?? null),
    ],
  );
  const owned = new Set(rows.map((r) => r.id));
  return items.map((x) => owned.has(x.executionId));
}

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
    const [owned] = await recordSuccesses(db, workerId, [{ executionId: exec.id, ...outcome }]);
    return { status: 'succeeded', owned };
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
