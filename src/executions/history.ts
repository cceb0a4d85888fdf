import type { Queryable } from '../db/database.ts';
import { VecronError, notFound } from '../errors.ts';
import { isUuid, iso } from '../ids.ts';
import { EXECUTION_STATUSES, type ExecutionStatus, type StepStatus } from '../state/statuses.ts';
import { type LimitsView, type WaitingReason, limitsView, waitingReasons } from '../limits/waiting.ts';

export { EXECUTION_STATUSES, type ExecutionStatus };

export interface StepRunView {
  id: string;
  position: number;
  type: string;
  status: StepStatus;
  /** Why a skipped step did not run. */
  reason: string | null;
  attempt: number;
  output: unknown;
  error: unknown;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: number | null;
}

export interface ExecutionView {
  id: string;
  job_id: string;
  job_name: string;
  job_version: number;
  status: ExecutionStatus;
  trigger_type: string;
  trigger: unknown;
  fire_time: string | null;
  attempt: number;
  max_attempts: number;
  run_at: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  error: unknown;
  /** The concurrency and rate limits it was queued with (src/limits); null when its job had none. */
  limits: LimitsView | null;
  /** Why a queued execution has not started yet (null when it only waits for a free worker, or is not queued). */
  waiting: WaitingReason | null;
  steps?: StepRunView[];
  context?: unknown;
}

const ms = (a: Date | null, b: Date | null): number | null => (a && b ? b.getTime() - a.getTime() : null);

function toView(r: any): ExecutionView {
  return {
    id: r.id,
    job_id: r.job_id,
    job_name: r.job_snapshot?.name ?? null,
    job_version: r.job_version,
    status: r.status,
    trigger_type: r.trigger_type,
    trigger: r.trigger,
    fire_time: iso(r.fire_time),
    attempt: r.attempt,
    max_attempts: r.max_attempts,
    run_at: r.run_at.toISOString(),
    created_at: r.created_at.toISOString(),
    started_at: iso(r.started_at),
    finished_at: iso(r.finished_at),
    duration_ms: ms(r.started_at, r.finished_at),
    error: r.error ?? null,
    limits: limitsView(r),
    waiting: null,
  };
}

/** Fills in `waiting` for the queued ones among `views` (one query). */
async function withWaiting(db: Queryable, views: ExecutionView[]): Promise<ExecutionView[]> {
  const reasons = await waitingReasons(
    db,
    views.filter((v) => v.status === 'queued').map((v) => v.id),
  );
  for (const v of views) v.waiting = reasons.get(v.id) ?? null;
  return views;
}

export interface ExecutionListQuery {
  page: number;
  limit: number;
  jobId?: string;
  statuses?: ExecutionStatus[];
}

export async function listExecutions(db: Queryable, q: ExecutionListQuery): Promise<{ items: ExecutionView[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.jobId !== undefined) {
    if (!isUuid(q.jobId)) return { items: [], total: 0 };
    params.push(q.jobId);
    where.push(`job_id = $${params.length}`);
  }
  if (q.statuses?.length) {
    const bad = q.statuses.filter((s) => !(EXECUTION_STATUSES as readonly string[]).includes(s));
    if (bad.length) {
      throw new VecronError('validation_failed', `unknown execution status '${bad[0]}' (expected one of ${EXECUTION_STATUSES.join(', ')})`);
    }
    params.push(q.statuses);
    where.push(`status = ANY($${params.length}::text[])`);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM executions ${w}`, params)).rows[0].n;
  const { rows } = await db.query(
    `SELECT id, job_id, job_version, jsonb_build_object('name', job_snapshot->'name') AS job_snapshot, status,
            trigger_type, trigger, fire_time, attempt, max_attempts, run_at, created_at, started_at, finished_at, error,
            concurrency_key, concurrency_limit, rate_key, rate_limit, rate_interval_seconds
     FROM executions ${w} ORDER BY created_at DESC, id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, q.limit, (q.page - 1) * q.limit],
  );
  return { items: await withWaiting(db, rows.map(toView)), total };
}

export async function getExecution(db: Queryable, id: string): Promise<ExecutionView> {
  if (!isUuid(id)) throw notFound('execution', id);
  const { rows } = await db.query('SELECT * FROM executions WHERE id = $1', [id]);
  if (!rows[0]) throw notFound('execution', id);
  const [view] = await withWaiting(db, [toView(rows[0])]);
  view.context = (rows[0] as any).context ?? null;
  const steps = await db.query<any>('SELECT * FROM step_runs WHERE execution_id = $1 ORDER BY position', [id]);
  const byId = new Map(steps.rows.map((s) => [s.step_id as string, s]));
  // A step row exists once the step has started; the others are shown from the job's snapshot.
  const planned: { id: string; type: string }[] = (rows[0] as any).job_snapshot?.steps ?? [];
  const pending = planned.map((p, position) => ({ step_id: p.id, position, type: p.type, status: 'pending', attempt: 0 })).filter((p) => !byId.has(p.step_id));
  view.steps = [...steps.rows, ...pending]
    .sort((a, b) => a.position - b.position)
    .map((s) => ({
      id: s.step_id,
      position: s.position,
      type: s.type,
      status: s.status,
      reason: s.reason ?? null,
      attempt: s.attempt,
      output: s.output ?? null,
      error: s.error ?? null,
      started_at: iso(s.started_at),
      completed_at: iso(s.completed_at),
      duration_ms: ms(s.started_at, s.completed_at),
    }));
  return view;
}
