import type { Queryable } from '../db/database.ts';
import { QUEUE_CHANNEL } from '../db/channels.ts';
import { retryDelayMs } from '../queue/backoff.ts';
import { closeSteps, resetSteps } from './close-steps.ts';
import { eventError, eventsCte } from './events.ts';
import { SKIP_REASONS, execFrom } from './statuses.ts';

/**
 * How a worker ends an attempt: `succeed`, `retry_later`, `fail`, `dead_letter` and `hand_back`.
 * Every write is fenced on `locked_by`: a worker that lost its lease (another worker took over, or
 * an operator cancelled) cannot overwrite the new state, and learns so from the result (`owned`).
 * These are plain async functions of (db, ...): callers may retry them (a retry of a write that did
 * commit finds the execution no longer running and reports `owned: false`).
 */

export type Outcome =
  /** `lastStep`: the final step's result, written in the same statement as the execution's status. */
  | { status: 'succeeded'; lastStep?: { stepId: string; completedAt: Date; outputJson: string }; contextJson?: string | null }
  | { status: 'failed'; error: { code: string; message: string; retryable: boolean; step_id?: string; details?: unknown } };

// Every statement's text is built once, at load: node-postgres names a prepared statement by its
// text, and a text built per call is built and hashed per call (measurable per execution).

export interface Success {
  executionId: string;
  lastStep?: { stepId: string; completedAt: Date; outputJson: string };
  contextJson?: string | null;
}

const RECORD_SUCCESSES_SQL = `WITH input AS (
       SELECT * FROM unnest($2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[]) WITH ORDINALITY
                AS i(id, step_id, completed_at, output, context, n)
     ), locked AS MATERIALIZED (
       -- In id order, as a heartbeat locks them (src/queue/lease.ts): no deadlock between the two.
       SELECT e.id FROM executions e WHERE e.id = ANY($2::uuid[]) AND e.locked_by = $1 ORDER BY e.id FOR NO KEY UPDATE
     ), u AS (
       UPDATE executions e
       SET status = 'succeeded', finished_at = now(), locked_by = NULL, lease_expires_at = NULL, error = NULL,
           context = coalesce(i.context::jsonb, e.context)
       FROM input i JOIN locked l ON l.id = i.id
       WHERE e.id = i.id AND e.locked_by = $1 AND e.status IN (${execFrom('succeed')})
       RETURNING e.id, e.job_id, e.finished_at, i.n
     ), s AS (
       UPDATE step_runs r SET status = 'succeeded', completed_at = i.completed_at, output = i.output::jsonb
       FROM input i JOIN u ON u.id = i.id
       WHERE r.execution_id = i.id AND r.step_id = i.step_id
       RETURNING r.execution_id, r.step_id, r.completed_at, u.job_id, u.n
     ), ${eventsCte([
       {
         from: 's',
         kind: 'step',
         executionId: 's.execution_id',
         jobId: 's.job_id',
         stepId: 's.step_id',
         status: `'succeeded'`,
         at: 's.completed_at',
         order: 's.n',
         phase: 0,
       },
       { from: 'u', kind: 'execution', executionId: 'u.id', jobId: 'u.job_id', status: `'succeeded'`, at: 'u.finished_at', order: 'u.n', phase: 1 },
     ])}
     SELECT u.id FROM u`;

/**
 * `succeed`, for several executions of one worker in one statement (the group commit of
 * src/queue/success-writer.ts): for each, the last step's result, the final status and their
 * events. Returns, in input order, whether the worker still owned each execution (a lost one is
 * left untouched).
 */
export async function recordSuccesses(db: Queryable, workerId: string, items: Success[]): Promise<boolean[]> {
  const { rows } = await db.query<{ id: string }>(RECORD_SUCCESSES_SQL, [
    workerId,
    items.map((x) => x.executionId),
    items.map((x) => x.lastStep?.stepId ?? null),
    items.map((x) => x.lastStep?.completedAt ?? null),
    items.map((x) => x.lastStep?.outputJson ?? null),
    items.map((x) => x.contextJson ?? null),
  ]);
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

const RETRY_LATER_SQL = `WITH u AS (
       UPDATE executions SET status = 'queued', run_at = $3, locked_by = NULL, lease_expires_at = NULL,
              error = $4, attempts = attempts || $5::jsonb
       WHERE id = $1 AND locked_by = $2 AND status IN (${execFrom('retry_later')})
       RETURNING id, job_id, run_at
     ), ${eventsCte([{ from: 'u', kind: 'execution', executionId: 'u.id', jobId: 'u.job_id', status: `'queued'`, error: '$6', phase: 0 }])}
     -- wakes a worker at the retry's time (the payload carries it)
     SELECT u.id, pg_notify('${QUEUE_CHANNEL}', u.id::text || ' ' || floor(extract(epoch FROM u.run_at) * 1000)::bigint::text) FROM u`;

const close = closeSteps('u', '$4::jsonb', '$6::jsonb', '$7::text');
const endFailedSql = (t: 'dead_letter' | 'fail') =>
  `WITH u AS (
       UPDATE executions SET status = $3, finished_at = now(), locked_by = NULL, lease_expires_at = NULL,
              error = $4, attempts = attempts || $5::jsonb
       WHERE id = $1 AND locked_by = $2 AND status IN (${execFrom(t)})
       RETURNING id, job_id, job_snapshot, finished_at
     ), ${close.ctes},
     ${eventsCte([...close.events, { from: 'u', kind: 'execution', executionId: 'u.id', jobId: 'u.job_id', status: '$3', at: 'u.finished_at', error: '$6', phase: 2 }])}
     SELECT u.id FROM u`;
const END_FAILED_SQL = { dead_letter: endFailedSql('dead_letter'), fail: endFailedSql('fail') };

/**
 * Records how an attempt ended: `succeed`; for a failure `retry_later` (retryable, attempts left:
 * queued again with backoff), else `dead_letter` (retryable, out of attempts: waits for an
 * operator) or `fail` (not retryable). A failure ends the steps that did not run as skipped.
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
    const r = await db.query(RETRY_LATER_SQL, [exec.id, workerId, runAt, JSON.stringify(err), attemptEntry, eventError(err)]);
    return { status: 'queued', runAt, owned: r.rows.length > 0 };
  }
  const status = err.retryable ? 'dead_lettered' : 'failed';
  const transition = err.retryable ? ('dead_letter' as const) : ('fail' as const);
  const r = await db.query(END_FAILED_SQL[transition], [
    exec.id,
    workerId,
    status,
    JSON.stringify(err),
    attemptEntry,
    eventError(err),
    err.step_id ? SKIP_REASONS.afterFailure : SKIP_REASONS.executionFailed,
  ]);
  return { status, owned: r.rows.length > 0 };
}

const reset = resetSteps('u');
const HAND_BACK_SQL = `WITH u AS (
       UPDATE executions SET status = 'queued', run_at = greatest(run_at, now()), locked_by = NULL, lease_expires_at = NULL,
              attempt = greatest(attempt - 1, 0)
       WHERE id = $1 AND locked_by = $2 AND status IN (${execFrom('hand_back')})
       RETURNING id, job_id
     ), ${reset.ctes},
     ${eventsCte([...reset.events, { from: 'u', kind: 'execution', executionId: 'u.id', jobId: 'u.job_id', status: `'queued'`, reason: `'handed back by a worker shutting down'`, phase: 1 }])}
     SELECT u.id, pg_notify('${QUEUE_CHANNEL}', u.id::text) FROM u`;

/**
 * `hand_back` (graceful shutdown): an unfinished execution goes back to the queue without counting
 * the attempt; one held before its run_at (claimed ahead) stays due at that time.
 */
export async function handBack(db: Queryable, executionId: string, workerId: string): Promise<boolean> {
  const r = await db.query(HAND_BACK_SQL, [executionId, workerId]);
  return r.rows.length > 0;
}
