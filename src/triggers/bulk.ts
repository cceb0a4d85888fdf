/**
 * Bulk operations (issue 18): cancel or retry the executions a filter selects, and trigger several
 * jobs, in one call. Every change goes through the one-owner state functions (src/state/operator.ts,
 * src/state/enqueue.ts), one execution at a time, so each writes its row and its event exactly as
 * the single-execution routes do; this module only selects, bounds and reports.
 */
import type { Database } from '../db/database.ts';
import { VecronError, validationFailed, type Problem } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { getJob } from '../jobs/repository.ts';
import { enqueueExecution, type TriggerInfo } from '../state/enqueue.ts';
import { cancelExecution, retryExecution, type OperatorResult } from '../state/operator.ts';
import { EXECUTION_STATUSES, EXECUTION_TRANSITIONS, type ExecutionStatus } from '../state/statuses.ts';
import { fingerprint, triggerOnce } from './idempotency.ts';

export const BULK_ACTIONS = ['cancel', 'retry'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];
export const TRIGGER_TYPES = ['schedule', 'manual', 'webhook'] as const;
/** Executions changed per call when the caller gives no `limit`. */
export const DEFAULT_BULK_LIMIT = 100;

const TRANSITION = { cancel: 'cancel', retry: 'operator_retry' } as const;
const DONE = { cancel: 'cancelled', retry: 'retried' } as const;
const WOULD = { cancel: 'would_cancel', retry: 'would_retry' } as const;

/** The statuses `action` applies to (from the transitions table: cancel queued/running, retry failed/dead_lettered). */
export const eligibleStatuses = (action: BulkAction): ExecutionStatus[] => [...EXECUTION_TRANSITIONS[TRANSITION[action]].from] as ExecutionStatus[];

export interface BulkFilter {
  /** These executions (the dashboard's selection); ids that are not eligible are reported as skipped. */
  ids?: string[];
  job_id?: string;
  /** A subset of the action's statuses; by default all of them. */
  status?: string[];
  trigger_type?: string[];
  /** created_at >= from and < to (ISO 8601 instants). */
  from?: string;
  to?: string;
}

export interface BulkRequest {
  action: BulkAction;
  filter: BulkFilter;
  limit?: number;
  dry_run?: boolean;
}

export type BulkOutcome = 'cancelled' | 'retried' | 'would_cancel' | 'would_retry' | 'skipped' | 'not_found';

export interface BulkItem {
  execution_id: string;
  job_id: string | null;
  outcome: BulkOutcome;
  /** The status before the call, and after it (unchanged when skipped or in a dry run). */
  status_before: ExecutionStatus | null;
  status: ExecutionStatus | null;
  /** Why it was skipped. */
  reason?: string;
}

export interface BulkResult {
  action: BulkAction;
  dry_run: boolean;
  limit: number;
  /** Executions the filter selects in all (may exceed `limit`). */
  matched: number;
  /** More executions match than this call handled: call again (the handled ones no longer match). */
  truncated: boolean;
  counts: Partial<Record<BulkOutcome, number>>;
  items: BulkItem[];
}

function instant(value: string | undefined, path: string, problems: Problem[]): Date | null {
  if (value === undefined) return null;
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(d.getTime())) {
    problems.push({ path, message: `must be an ISO 8601 instant such as 2026-12-01T00:00:00Z, got '${value}'` });
    return null;
  }
  return d;
}

/** Checks the request beyond its JSON schema; every problem at its path. */
function check(req: BulkRequest, max: number): { limit: number; from: Date | null; to: Date | null; statuses: string[] } {
  const problems: Problem[] = [];
  const f = req.filter;
  const eligible = eligibleStatuses(req.action);
  if (!Object.values(f).some((v) => v !== undefined)) {
    problems.push({
      path: 'filter',
      message: 'give at least one of ids, job_id, status, trigger_type, from, to (a bulk call never selects everything by default)',
    });
  }
  f.ids?.forEach((id, i) => {
    if (!isUuid(id)) problems.push({ path: `filter.ids[${i}]`, message: `must be an execution id (uuid), got '${id}'` });
  });
  if (f.job_id !== undefined && !isUuid(f.job_id)) problems.push({ path: 'filter.job_id', message: `must be a job id (uuid), got '${f.job_id}'` });
  f.status?.forEach((s, i) => {
    if (!(EXECUTION_STATUSES as readonly string[]).includes(s)) {
      problems.push({ path: `filter.status[${i}]`, message: `unknown execution status '${s}' (expected one of ${EXECUTION_STATUSES.join(', ')})` });
    } else if (!(eligible as string[]).includes(s)) {
      problems.push({ path: `filter.status[${i}]`, message: `${req.action} applies to ${eligible.join(' and ')} executions, not ${s}` });
    }
  });
  const from = instant(f.from, 'filter.from', problems);
  const to = instant(f.to, 'filter.to', problems);
  if (from && to && from >= to) problems.push({ path: 'filter.to', message: 'must be later than filter.from' });
  const limit = req.limit ?? (f.ids ? f.ids.length : Math.min(DEFAULT_BULK_LIMIT, max));
  if (limit > max) problems.push({ path: 'limit', message: `must be at most ${max} (VECRON_BULK_MAX_EXECUTIONS), got ${limit}` });
  if (f.ids && f.ids.length > max) problems.push({ path: 'filter.ids', message: `at most ${max} ids (VECRON_BULK_MAX_EXECUTIONS), got ${f.ids.length}` });
  if (problems.length) throw validationFailed(problems, 'bulk request');
  return { limit: Math.min(limit, max), from, to, statuses: f.status ?? eligible };
}

/**
 * Cancels or retries (or, with dry_run, lists) up to `limit` executions the filter selects, oldest
 * first. With `ids`, ids that exist but are not in an eligible status are reported as skipped and
 * unknown ones as not_found; an execution whose status changed between the selection and its
 * transition is skipped with the status it has now (the transition refused it).
 */
export async function bulkExecutions(db: Database, req: BulkRequest, by: string, max: number): Promise<BulkResult> {
  const { limit, from, to, statuses } = check(req, max);
  const f = req.filter;
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (f.ids) add('id = ANY(?::uuid[])', [...new Set(f.ids.map((id) => id.toLowerCase()))]);
  if (f.job_id !== undefined) add('job_id = ?::uuid', f.job_id);
  // With ids, the action's statuses are checked per row below (so that the caller learns why).
  if (!f.ids || f.status) add('status = ANY(?::text[])', statuses);
  if (f.trigger_type) add('trigger_type = ANY(?::text[])', f.trigger_type);
  if (from) add('created_at >= ?', from);
  if (to) add('created_at < ?', to);
  const w = `WHERE ${where.join(' AND ')}`;
  const matched = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM executions ${w}`, params)).rows[0].n;
  const { rows } = await db.query<{ id: string; job_id: string; status: ExecutionStatus }>(
    `SELECT id, job_id, status FROM executions ${w} ORDER BY created_at, id LIMIT $${params.length + 1}`,
    [...params, limit],
  );

  const eligible = new Set<string>(eligibleStatuses(req.action));
  const items: BulkItem[] = [];
  for (const row of rows) {
    const base = { execution_id: row.id, job_id: row.job_id, status_before: row.status };
    if (!eligible.has(row.status)) {
      items.push({ ...base, outcome: 'skipped', status: row.status, reason: `${req.action} applies to ${[...eligible].join(' and ')} executions` });
      continue;
    }
    if (req.dry_run) {
      items.push({ ...base, outcome: WOULD[req.action], status: row.status });
      continue;
    }
    const r: OperatorResult = req.action === 'cancel' ? await cancelExecution(db, row.id, by) : await retryExecution(db, row.id, by);
    if (r.applied) items.push({ ...base, outcome: DONE[req.action], status: req.action === 'cancel' ? 'cancelled' : 'queued' });
    else
      items.push({
        ...base,
        outcome: r.status === null ? 'not_found' : 'skipped',
        status: r.status,
        reason: 'its status changed before the action reached it',
      });
  }
  if (f.ids) {
    const found = new Set(rows.map((r) => r.id));
    for (const id of new Set(f.ids.map((x) => x.toLowerCase()))) {
      if (!found.has(id) && items.length < limit) items.push({ execution_id: id, job_id: null, outcome: 'not_found', status_before: null, status: null });
    }
  }
  const counts: BulkResult['counts'] = {};
  for (const it of items) counts[it.outcome] = (counts[it.outcome] ?? 0) + 1;
  return { action: req.action, dry_run: req.dry_run ?? false, limit, matched, truncated: matched > rows.length, counts, items };
}

export interface BulkTriggerRequest {
  job_ids: string[];
  payload?: unknown;
  dry_run?: boolean;
}

export interface BulkTriggerItem {
  job_id: string;
  outcome: 'queued' | 'replayed' | 'would_trigger' | 'not_found' | 'idempotency_key_reused';
  execution_id?: string;
  status?: string;
  /** For idempotency_key_reused: why nothing ran for this job (the others still ran). */
  message?: string;
}

/**
 * Runs each listed job once now (a job listed twice runs once), with `payload` as its
 * `trigger.payload`. With an Idempotency-Key, the key applies to each job on its own: a repeat of
 * the call queues nothing new and answers with the first executions (replayed).
 */
export async function bulkTrigger(
  db: Database,
  req: BulkTriggerRequest,
  opts: { user: string | null; idempotencyKey: string | null; windowSeconds: number; max: number },
): Promise<{ dry_run: boolean; counts: Partial<Record<BulkTriggerItem['outcome'], number>>; items: BulkTriggerItem[] }> {
  const problems: Problem[] = [];
  req.job_ids.forEach((id, i) => {
    if (!isUuid(id)) problems.push({ path: `job_ids[${i}]`, message: `must be a job id (uuid), got '${id}'` });
  });
  if (req.job_ids.length > opts.max)
    problems.push({ path: 'job_ids', message: `at most ${opts.max} jobs (VECRON_BULK_MAX_EXECUTIONS), got ${req.job_ids.length}` });
  if (problems.length) throw validationFailed(problems, 'bulk trigger');
  const payload = req.payload ?? {};
  const items: BulkTriggerItem[] = [];
  for (const id of new Set(req.job_ids.map((x) => x.toLowerCase()))) {
    const job = await getJob(db, id).catch((err) => {
      if (err instanceof VecronError && err.code === 'not_found') return null;
      throw err;
    });
    if (!job) {
      items.push({ job_id: id, outcome: 'not_found' });
      continue;
    }
    if (req.dry_run) {
      items.push({ job_id: id, outcome: 'would_trigger' });
      continue;
    }
    const trigger: TriggerInfo = { type: 'manual', time: new Date().toISOString(), user: opts.user, payload };
    if (opts.idempotencyKey !== null) {
      const scope = { jobId: id, source: 'manual' as const, key: opts.idempotencyKey, fingerprint: fingerprint(payload) };
      try {
        const r = await db.transaction((tx) => triggerOnce(tx, scope, opts.windowSeconds, () => enqueueExecution(tx, job, { trigger })));
        items.push({ job_id: id, outcome: r.replayed ? 'replayed' : 'queued', execution_id: r.executionId, status: r.status });
      } catch (err) {
        // Reported per job, as not_found is: a 422 for the whole call would hide the jobs that did run.
        if (!(err instanceof VecronError && err.code === 'idempotency_key_reused')) throw err;
        items.push({
          job_id: id,
          outcome: 'idempotency_key_reused',
          execution_id: (err.details as { execution_id?: string }).execution_id,
          message: err.message,
        });
      }
      continue;
    }
    const executionId = await enqueueExecution(db, job, { trigger });
    if (!executionId) throw new VecronError('conflict', `the execution of job ${id} could not be queued`);
    items.push({ job_id: id, outcome: 'queued', execution_id: executionId, status: 'queued' });
  }
  const counts: Partial<Record<BulkTriggerItem['outcome'], number>> = {};
  for (const it of items) counts[it.outcome] = (counts[it.outcome] ?? 0) + 1;
  return { dry_run: req.dry_run ?? false, counts, items };
}
