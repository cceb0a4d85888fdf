import type { Queryable } from '../db/database.ts';
import type { RunVariableRow } from '../variables/repository.ts';

export interface ClaimedExecution {
  id: string;
  job_id: string;
  job_version: number;
  job_snapshot: any;
  trigger_type: string;
  trigger: any;
  fire_time: Date | null;
  attempt: number;
  max_attempts: number;
  started_at: Date;
  created_at: Date;
  serial: boolean;
  /** The context recorded so far (variables, trigger, set_context writes); null for a fresh execution. */
  context: { set_context?: Record<string, unknown> } | null;
  /** The step the claim marked running (the first step, for an execution starting from the beginning), and when. */
  first_step_id: string | null;
  first_step_started_at: Date | null;
  /** Global and job-scoped variable rows (secrets still encrypted), fetched with the claim. */
  variable_rows: RunVariableRow[];
  /** Steps that already succeeded in earlier attempts (the run resumes after them). */
  done_steps: { step_id: string; output: unknown; started_at: string | null; completed_at: string | null }[];
}

/**
 * Takes up to `limit` runnable executions for `workerId`, under a lease of `leaseSeconds`.
 * `SKIP LOCKED` lets many workers claim at once without waiting on each other or taking the same
 * row. A serial execution (overlap_policy 'queue') is runnable only when no earlier execution of
 * its job is still queued or running, which also holds between two workers claiming concurrently:
 * the earlier one is either locked by the other worker (skipped) or visible as queued/running.
 */
export async function claimExecutions(db: Queryable, workerId: string, limit: number, leaseSeconds: number): Promise<ClaimedExecution[]> {
  const { rows } = await db.query<ClaimedExecution>(
    `WITH candidates AS (
       SELECT e.id FROM executions e
       WHERE e.status = 'queued' AND e.run_at <= now()
         AND (NOT e.serial OR NOT EXISTS (
               SELECT 1 FROM executions o
               WHERE o.job_id = e.job_id AND o.serial AND o.id <> e.id
                 AND (o.status = 'running' OR (o.status = 'queued' AND (o.created_at, o.id) < (e.created_at, e.id)))))
       ORDER BY e.run_at, e.created_at
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     ), claimed AS (
       UPDATE executions x
       SET status = 'running', locked_by = $1, attempt = x.attempt + 1, started_at = now(), finished_at = NULL,
           lease_expires_at = now() + make_interval(secs => $3)
       FROM candidates c WHERE x.id = c.id
       RETURNING x.id, x.job_id, x.job_version, x.job_snapshot, x.trigger_type, x.trigger, x.fire_time, x.attempt,
                 x.max_attempts, x.started_at, x.created_at, x.serial, x.context
     ), first_step AS (
       -- The first step that has not succeeded yet starts with the claim (one statement less per run).
       -- Step rows are written when a step starts, not at enqueue: a queued execution has none yet.
       -- Only for an execution starting from the beginning: one that resumes after succeeded steps
       -- continues where its route says (src/engine/routing.ts), which the engine works out.
       INSERT INTO step_runs AS r (execution_id, step_id, position, type, status, started_at, attempt)
       SELECT claimed.id, claimed.job_snapshot->'steps'->0->>'id', 0, claimed.job_snapshot->'steps'->0->>'type',
              'running', clock_timestamp(), claimed.attempt
       FROM claimed
       WHERE jsonb_array_length(claimed.job_snapshot->'steps') > 0
         AND NOT EXISTS (SELECT 1 FROM step_runs d WHERE d.execution_id = claimed.id AND d.status = 'succeeded')
       ON CONFLICT (execution_id, step_id) DO UPDATE
         SET status = 'running', started_at = excluded.started_at, completed_at = NULL, attempt = excluded.attempt,
             error = NULL, output = NULL
       RETURNING r.execution_id, r.step_id, r.started_at
     )
     SELECT claimed.*, f.step_id AS first_step_id, f.started_at AS first_step_started_at,
            -- status events go out with the claim itself (delivered at commit)
            pg_notify('vecron_events', json_build_object('kind', 'execution', 'execution_id', claimed.id, 'job_id', claimed.job_id,
                      'status', 'running', 'at', now())::text) AS ev1,
            CASE WHEN f.step_id IS NOT NULL THEN
              pg_notify('vecron_events', json_build_object('kind', 'step', 'execution_id', claimed.id, 'job_id', claimed.job_id,
                        'step_id', f.step_id, 'status', 'running', 'at', f.started_at)::text) END AS ev2,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('step_id', r.step_id, 'output', r.output,
                               'started_at', r.started_at, 'completed_at', r.completed_at)), '[]'::jsonb)
             FROM step_runs r WHERE r.execution_id = claimed.id AND r.status = 'succeeded') AS done_steps,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('name', v.name, 'job_id', v.job_id, 'secret', v.secret,
                               'value', v.value, 'encrypted_value', v.encrypted_value)), '[]'::jsonb)
             FROM variables v WHERE v.job_id IS NULL OR v.job_id = claimed.job_id) AS variable_rows
     FROM claimed LEFT JOIN first_step f ON f.execution_id = claimed.id`,
    [workerId, limit, leaseSeconds],
  );
  return rows;
}

/** Extends the leases of executions this worker still runs; returns the ids it still owns. */
export async function renewLeases(db: Queryable, workerId: string, ids: string[], leaseSeconds: number): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `UPDATE executions SET lease_expires_at = now() + make_interval(secs => $3)
     WHERE id = ANY($1::uuid[]) AND locked_by = $2 AND status = 'running'
     RETURNING id`,
    [ids, workerId, leaseSeconds],
  );
  return new Set(rows.map((r) => r.id));
}

export interface ReapedExecution {
  id: string;
  job_id: string;
  status: 'queued' | 'dead_lettered';
  locked_by: string;
}

/**
 * Executions whose worker stopped renewing its lease (crashed, killed, partitioned) go back to the
 * queue, or to the dead-letter state when that was their last attempt, so a module that kills its
 * worker every time cannot loop forever. The step that was running is run again by the next worker.
 */
export async function reapExpiredLeases(db: Queryable): Promise<ReapedExecution[]> {
  const { rows } = await db.query<ReapedExecution>(
    `WITH expired AS (
       SELECT id, locked_by FROM executions
       WHERE status = 'running' AND lease_expires_at < now()
       FOR UPDATE SKIP LOCKED
     )
     UPDATE executions x
     SET status = CASE WHEN x.attempt >= x.max_attempts THEN 'dead_lettered' ELSE 'queued' END,
         locked_by = NULL, lease_expires_at = NULL, run_at = now(),
         finished_at = CASE WHEN x.attempt >= x.max_attempts THEN now() ELSE NULL END,
         error = jsonb_build_object('code', 'lease_expired', 'message',
                   'worker ' || e.locked_by || ' stopped renewing its lease (it crashed or was killed); attempt ' || x.attempt || ' of ' || x.max_attempts),
         attempts = x.attempts || jsonb_build_array(jsonb_build_object('attempt', x.attempt, 'at', now(), 'worker', e.locked_by,
                   'error', jsonb_build_object('code', 'lease_expired', 'message', 'worker stopped renewing its lease')))
     FROM expired e WHERE x.id = e.id
     RETURNING x.id, x.job_id, x.status, e.locked_by`,
  );
  if (rows.length) {
    await db.query(
      `UPDATE step_runs SET status = 'pending', started_at = NULL
       WHERE execution_id = ANY($1::uuid[]) AND status = 'running'`,
      [rows.map((r) => r.id)],
    );
  }
  return rows;
}
