import type { Queryable } from '../db/database.ts';
import { eventError, eventsCte } from './events.ts';
import { execFrom, stepFrom } from './statuses.ts';

/**
 * Step transitions made by the worker that owns the execution. Each is one statement that writes
 * the step row, its event and (when given) the execution's context, and is fenced: it applies only
 * while `workerId` still holds the execution's lease. Each returns false when it was not applied
 * (the lease was lost), and writes nothing then.
 */

/** Whose execution: `$1` is always the execution id, `$2` the worker, `$3` the job id. Every statement
 * ends in a SELECT of the rows it changed: their number says whether it applied (rowCount of a
 * statement with data-modifying CTEs differs between PGlite and node-postgres). */
export interface StepOwner {
  executionId: string;
  jobId: string;
  workerId: string;
}

export interface StepRef {
  id: string;
  position: number;
  type: string;
}

/** The fence of every step write: the execution is still running under this worker's lease. */
const FENCE = `EXISTS (SELECT 1 FROM executions x WHERE x.id = $1 AND x.locked_by = $2 AND x.status IN (${execFrom('succeed')}))`;

/** A CTE `c` with one row when the fence holds; it also writes the execution's context if `$4` is one. */
const guard = (withContext: boolean) =>
  withContext
    ? `c AS (UPDATE executions SET context = $4::jsonb WHERE id = $1 AND ${FENCE} RETURNING id)`
    : `c AS (SELECT 1 WHERE ${FENCE} AND $4::jsonb IS NULL)`; // $4 is null: nothing to write

/**
 * How a step row is (re)started: the claim starts the first step with the same assignment
 * (src/state/claim.ts), so a rerun after a failure, a skip or a lost worker always looks alike.
 */
export const RESTART_STEP = `status = 'running', started_at = excluded.started_at, completed_at = NULL, attempt = excluded.attempt,
             error = NULL, output = NULL, reason = NULL`;

const START_STEP_SQL = [false, true].map(
  (withContext) =>
    `WITH ${guard(withContext)},
     r AS (
       INSERT INTO step_runs AS r (execution_id, step_id, position, type, status, started_at, attempt)
       SELECT $1::uuid, $5::text, $6::int, $7::text, 'running', $8::timestamptz, $9::int FROM c
       ON CONFLICT (execution_id, step_id) DO UPDATE SET ${RESTART_STEP}
       WHERE r.status IN (${stepFrom('start')})
       RETURNING r.step_id, r.started_at
     ), ${eventsCte([{ from: 'r', kind: 'step', executionId: '$1', jobId: '$3', stepId: 'r.step_id', status: `'running'`, at: 'r.started_at', phase: 0 }])}
     SELECT 1 FROM r`,
);

/** One step start of a batch (startSteps). */
export interface StepStart {
  owner: StepOwner;
  step: StepRef;
  startedAt: Date;
  attempt: number;
  contextJson: string | null;
}

const START_STEPS_SQL = `WITH input AS (
       SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::text[], $7::timestamptz[], $8::int[], $9::text[]) WITH ORDINALITY
                AS i(id, job_id, step_id, position, type, started_at, attempt, context, n)
     ), locked AS MATERIALIZED (
       -- In id order, as a heartbeat and the group commit of successes lock them (no deadlock between them).
       SELECT e.id FROM executions e
       WHERE e.id = ANY($2::uuid[]) AND e.locked_by = $1 AND e.status IN (${execFrom('succeed')})
       ORDER BY e.id FOR NO KEY UPDATE
     ), c AS (
       UPDATE executions e SET context = coalesce(i.context::jsonb, e.context)
       FROM input i JOIN locked l ON l.id = i.id
       WHERE e.id = i.id
       RETURNING e.id
     ), r AS (
       INSERT INTO step_runs AS r (execution_id, step_id, position, type, status, started_at, attempt)
       SELECT i.id, i.step_id, i.position, i.type, 'running', i.started_at, i.attempt FROM input i JOIN c ON c.id = i.id
       ON CONFLICT (execution_id, step_id) DO UPDATE SET ${RESTART_STEP}
       WHERE r.status IN (${stepFrom('start')})
       RETURNING r.execution_id, r.step_id, r.started_at
     ), ${eventsCte([
       {
         from: 'r JOIN input i ON i.id = r.execution_id',
         kind: 'step',
         executionId: 'r.execution_id',
         jobId: 'i.job_id',
         stepId: 'r.step_id',
         status: `'running'`,
         at: 'r.started_at',
         order: 'i.n',
         phase: 0,
       },
     ])}
     SELECT r.execution_id AS id FROM r`;

/**
 * `start` for several steps of one worker's executions in one statement (the group commit of
 * src/queue/start-writer.ts), one step per execution. Returns, in input order, whether each was
 * applied (false: the lease was lost, and nothing was written for it).
 */
export async function startSteps(db: Queryable, workerId: string, items: StepStart[]): Promise<boolean[]> {
  const { rows } = await db.query<{ id: string }>(START_STEPS_SQL, [
    workerId,
    items.map((x) => x.owner.executionId),
    items.map((x) => x.owner.jobId),
    items.map((x) => x.step.id),
    items.map((x) => x.step.position),
    items.map((x) => x.step.type),
    items.map((x) => x.startedAt),
    items.map((x) => x.attempt),
    items.map((x) => x.contextJson),
  ]);
  const applied = new Set(rows.map((r) => r.id));
  return items.map((x) => applied.has(x.owner.executionId));
}

/** `start`: the step's row is written (or rewritten) as running. */
export async function startStep(db: Queryable, o: StepOwner, step: StepRef, startedAt: Date, attempt: number, contextJson: string | null): Promise<boolean> {
  const r = await db.query(START_STEP_SQL[contextJson !== null ? 1 : 0], [
    o.executionId,
    o.workerId,
    o.jobId,
    contextJson,
    step.id,
    step.position,
    step.type,
    startedAt,
    attempt,
  ]);
  return r.rows.length > 0;
}

const SUCCEED_STEP_SQL = [false, true].map(
  (withContext) =>
    `WITH ${guard(withContext)},
     r AS (
       UPDATE step_runs SET status = 'succeeded', completed_at = $6, output = $7::jsonb
       WHERE execution_id = $1 AND step_id = $5 AND status IN (${stepFrom('succeed')}) AND EXISTS (SELECT 1 FROM c)
       RETURNING step_id, completed_at
     ), ${eventsCte([{ from: 'r', kind: 'step', executionId: '$1', jobId: '$3', stepId: 'r.step_id', status: `'succeeded'`, at: 'r.completed_at', phase: 0 }])}
     SELECT 1 FROM r`,
);

/** `succeed`: the step's output (already masked, JSON) and end time. */
export async function succeedStep(
  db: Queryable,
  o: StepOwner,
  stepId: string,
  completedAt: Date,
  outputJson: string,
  contextJson: string | null,
): Promise<boolean> {
  const r = await db.query(SUCCEED_STEP_SQL[contextJson !== null ? 1 : 0], [o.executionId, o.workerId, o.jobId, contextJson, stepId, completedAt, outputJson]);
  return r.rows.length > 0;
}

const FAIL_STEP_SQL = [false, true].map(
  (withContext) =>
    `WITH ${guard(withContext)},
     r AS (
       UPDATE step_runs SET status = 'failed', completed_at = $6, error = $7::jsonb
       WHERE execution_id = $1 AND step_id = $5 AND status IN (${stepFrom('fail')}) AND EXISTS (SELECT 1 FROM c)
       RETURNING step_id, completed_at
     ), ${eventsCte([{ from: 'r', kind: 'step', executionId: '$1', jobId: '$3', stepId: 'r.step_id', status: `'failed'`, at: 'r.completed_at', error: '$8', phase: 0 }])}
     SELECT 1 FROM r`,
);

/** `fail`: the step's error (already masked) and end time. */
export async function failStep(db: Queryable, o: StepOwner, stepId: string, completedAt: Date, error: unknown, contextJson: string | null): Promise<boolean> {
  const r = await db.query(FAIL_STEP_SQL[contextJson !== null ? 1 : 0], [
    o.executionId,
    o.workerId,
    o.jobId,
    contextJson,
    stepId,
    completedAt,
    JSON.stringify(error),
    eventError(error),
  ]);
  return r.rows.length > 0;
}

const SKIP_STEPS_SQL = `WITH ${guard(false)},
     r AS (
       INSERT INTO step_runs AS r (execution_id, step_id, position, type, status, reason)
       SELECT $1::uuid, u.id, u.position, u.type, 'skipped', $8::text FROM unnest($5::text[], $6::int[], $7::text[]) AS u(id, position, type), c
       ON CONFLICT (execution_id, step_id) DO UPDATE
         SET status = 'skipped', reason = excluded.reason, started_at = NULL, completed_at = NULL, output = NULL, error = NULL
         WHERE r.status IN (${stepFrom('skip')})
       RETURNING r.step_id, r.position
     ), ${eventsCte([{ from: 'r', kind: 'step', executionId: '$1', jobId: '$3', stepId: 'r.step_id', status: `'skipped'`, reason: '$8', position: 'r.position', phase: 0 }])}
     SELECT (SELECT count(*) FROM r) AS skipped FROM c`;

/** `skip`: steps that will not run in this execution, with the reason (a step that already ran keeps its status). */
export async function skipSteps(db: Queryable, o: StepOwner, steps: StepRef[], reason: string): Promise<boolean> {
  if (steps.length === 0) return true;
  const r = await db.query(
    SKIP_STEPS_SQL, // one row while the fence holds
    [o.executionId, o.workerId, o.jobId, null, steps.map((s) => s.id), steps.map((s) => s.position), steps.map((s) => s.type), reason],
  );
  return r.rows.length > 0;
}
