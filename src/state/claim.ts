import type { Queryable } from '../db/database.ts';
import type { RunVariableRow } from '../variables/repository.ts';
import { eventsCte } from './events.ts';
import { execFrom, stepFrom } from './statuses.ts';
import { RESTART_STEP } from './steps.ts';

export interface ClaimedExecution {
  id: string;
  job_id: string;
  job_version: number;
  job_snapshot: any;
  trigger_type: string;
  trigger: any;
  fire_time: Date | null;
  /** When it is due: later than now for one claimed ahead (the worker holds it until then). */
  run_at: Date;
  attempt: number;
  max_attempts: number;
  started_at: Date;
  created_at: Date;
  serial: boolean;
  /** The execution's limits (src/limits): null for one without. */
  concurrency_key: string | null;
  rate_key: string | null;
  rate_interval_seconds: number | null;
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
 * An execution of a serial job (overlap_policy 'queue') is runnable only when no earlier execution
 * of its job is still queued or running (over `e`, the candidate). This also holds between two
 * workers claiming concurrently: the earlier one is either locked by the other worker (skipped) or
 * visible as queued/running.
 */
export const SERIAL_READY = `(NOT e.serial OR NOT EXISTS (
               SELECT 1 FROM executions o
               WHERE o.job_id = e.job_id AND o.serial AND o.id <> e.id
                 AND (o.status = 'running' OR (o.status = 'queued' AND (o.created_at, o.id) < (e.created_at, e.id)))))`;

// Built once at load (node-postgres names a prepared statement by its text).
const CLAIM_SQL = claimSql(`candidates AS (
       SELECT e.id FROM executions e
       WHERE e.status IN (${execFrom('claim')}) AND e.run_at <= now() + make_interval(secs => $4::float8 / 1000)
         AND e.concurrency_key IS NULL AND e.rate_key IS NULL
         AND ${SERIAL_READY}
       ORDER BY e.run_at, e.created_at
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     )`);

/**
 * `claim` (queued -> running): takes up to `limit` runnable executions without limits for
 * `workerId`, under a lease of `leaseSeconds`, in one statement that also starts each one's first
 * step and writes their events. With `aheadMs`, also executions due within that much time (the
 * earliest first): those are held by the worker and started at their run_at, so their first step
 * is not started here (the engine starts it when it really starts, with its real time). `SKIP LOCKED` lets many workers claim at once without waiting on
 * each other or taking the same row. Executions with a concurrency key or a rate limit are left
 * to claimLimitedExecutions (src/state/claim-limited.ts); their own index keeps them out of this
 * statement's way.
 */
export async function claimExecutions(db: Queryable, workerId: string, limit: number, leaseSeconds: number, aheadMs = 0): Promise<ClaimedExecution[]> {
  const { rows } = await db.query<ClaimedExecution>(CLAIM_SQL, [workerId, limit, leaseSeconds, aheadMs]);
  return rows;
}

/**
 * The claim statement around `ctes`, which must end with `candidates` (the locked ids to claim):
 * the update to running ($1 worker, $3 lease seconds), the first step, the events, and the rows
 * the worker needs. `startedAt` is the start time written; `more` adds CTEs that read `claimed`.
 */
export function claimSql(ctes: string, opts: { startedAt?: string; more?: string } = {}): string {
  return `WITH ${ctes}, claimed AS (
       UPDATE executions x
       SET status = 'running', locked_by = $1, attempt = x.attempt + 1, started_at = ${opts.startedAt ?? 'greatest(now(), x.run_at)'}, finished_at = NULL,
           lease_expires_at = now() + make_interval(secs => $3)
       FROM candidates c WHERE x.id = c.id
       RETURNING x.id, x.job_id, x.job_version, x.job_snapshot, x.trigger_type, x.trigger, x.fire_time, x.run_at, x.attempt,
                 x.max_attempts, x.started_at, x.created_at, x.serial, x.context,
                 x.concurrency_key, x.rate_key, x.rate_interval_seconds
     ),${opts.more ? ` ${opts.more},` : ''} first_step AS (
       -- The first step that has not succeeded yet starts with the claim (one statement less per run).
       -- Step rows are written when a step starts, not at enqueue: a queued execution has none yet.
       -- Only for an execution starting from the beginning: one that resumes after succeeded steps
       -- continues where its route says (src/engine/routing.ts), which the engine works out. Nor for
       -- one claimed ahead of its run_at: its step starts when the worker starts it.
       INSERT INTO step_runs AS r (execution_id, step_id, position, type, status, started_at, attempt)
       SELECT claimed.id, claimed.job_snapshot->'steps'->0->>'id', 0, claimed.job_snapshot->'steps'->0->>'type',
              'running', clock_timestamp(), claimed.attempt
       FROM claimed
       WHERE jsonb_array_length(claimed.job_snapshot->'steps') > 0 AND claimed.run_at <= now()
         AND NOT EXISTS (SELECT 1 FROM step_runs d WHERE d.execution_id = claimed.id AND d.status = 'succeeded')
       ON CONFLICT (execution_id, step_id) DO UPDATE SET ${RESTART_STEP}
       WHERE r.status IN (${stepFrom('start')})
       RETURNING r.execution_id, r.step_id, r.started_at
     ), ${eventsCte([
       // every execution's 'running' before the first steps' (each execution's own events stay in order)
       { from: 'claimed', kind: 'execution', executionId: 'claimed.id', jobId: 'claimed.job_id', status: `'running'`, at: 'claimed.started_at', phase: 0 },
       {
         from: 'first_step f JOIN claimed ON claimed.id = f.execution_id',
         kind: 'step',
         executionId: 'f.execution_id',
         jobId: 'claimed.job_id',
         stepId: 'f.step_id',
         status: `'running'`,
         at: 'f.started_at',
         phase: 1,
       },
     ])}
     SELECT claimed.*, f.step_id AS first_step_id, f.started_at AS first_step_started_at,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('step_id', r.step_id, 'output', r.output,
                               'started_at', r.started_at, 'completed_at', r.completed_at)), '[]'::jsonb)
             FROM step_runs r WHERE r.execution_id = claimed.id AND r.status = 'succeeded') AS done_steps,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('name', v.name, 'job_id', v.job_id, 'secret', v.secret,
                               'value', v.value, 'encrypted_value', v.encrypted_value)), '[]'::jsonb)
             FROM variables v WHERE v.job_id IS NULL OR v.job_id = claimed.job_id) AS variable_rows
     FROM claimed LEFT JOIN first_step f ON f.execution_id = claimed.id`;
}
