import type { Queryable } from '../db/database.ts';
import { QUEUE_CHANNEL } from '../db/channels.ts';
import { closeSteps } from './close-steps.ts';
import { eventsCte } from './events.ts';
import { SKIP_REASONS, execFrom, type ExecutionStatus } from './statuses.ts';

/** What an operator's action found: applied, or the execution's status that refused it (null: no such execution). */
export type OperatorResult = { applied: true } | { applied: false; status: ExecutionStatus | null };

async function refusal(db: Queryable, id: string): Promise<OperatorResult> {
  const { rows } = await db.query<{ status: ExecutionStatus }>('SELECT status FROM executions WHERE id = $1', [id]);
  return { applied: false, status: rows[0]?.status ?? null };
}

/**
 * `cancel` (queued or running -> cancelled). A running execution's worker learns it at its next
 * lease renewal and stops; its writes are fenced, so nothing it does afterwards is recorded. The
 * step that was running ends as failed (`cancelled`), the steps that never ran as skipped.
 */
export async function cancelExecution(db: Queryable, id: string, by: string): Promise<OperatorResult> {
  const close = closeSteps('u', '$3::jsonb', '$3::jsonb', '$4::text');
  const r = await db.query(
    `WITH u AS (
       UPDATE executions SET status = 'cancelled', finished_at = now(), locked_by = NULL, lease_expires_at = NULL,
              error = jsonb_build_object('code', 'cancelled', 'message', 'cancelled by ' || $2::text)
       WHERE id = $1 AND status IN (${execFrom('cancel')})
       RETURNING id, job_id, job_snapshot, finished_at, error
     ), ${close.ctes},
     ${eventsCte([...close.events, { from: 'u', kind: 'execution', executionId: 'u.id', jobId: 'u.job_id', status: `'cancelled'`, at: 'u.finished_at', error: 'u.error', phase: 2 }])}
     SELECT u.id FROM u`,
    [id, by, JSON.stringify({ code: 'cancelled', message: `cancelled by ${by}` }), SKIP_REASONS.cancelled],
  );
  return r.rows.length > 0 ? { applied: true } : refusal(db, id);
}

/**
 * `operator_retry` (failed or dead_lettered -> queued): runs the execution again, with one more
 * attempt, from its failed step (the steps that succeeded are kept). Wakes a worker.
 */
export async function retryExecution(db: Queryable, id: string, by: string): Promise<OperatorResult> {
  const r = await db.query(
    `WITH u AS (
       UPDATE executions SET status = 'queued', run_at = now(), finished_at = NULL, max_attempts = attempt + 1
       WHERE id = $1 AND status IN (${execFrom('operator_retry')})
       RETURNING id, job_id
     ), ${eventsCte([{ from: 'u', kind: 'execution', executionId: 'u.id', jobId: 'u.job_id', status: `'queued'`, reason: `'retried by ' || $2::text`, phase: 0 }])}
     SELECT u.id, pg_notify('${QUEUE_CHANNEL}', u.id::text) FROM u`,
    [id, by],
  );
  return r.rows.length > 0 ? { applied: true } : refusal(db, id);
}
