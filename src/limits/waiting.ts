/**
 * Why a queued execution has not started yet, as the API and the dashboard show it: worked out
 * when it is read (from the running executions and the rate tokens of its keys), so the claim, the
 * queue's hot path, writes nothing for it.
 */
import type { Queryable } from '../db/database.ts';

export type WaitingCode = 'scheduled' | 'concurrency_limit' | 'rate_limit';

export interface WaitingReason {
  /** `scheduled`: its run_at has not come (a fire time ahead, a retry's backoff); `concurrency_limit`: no free slot for its key; `rate_limit`: no start left in the interval. */
  code: WaitingCode;
  message: string;
  key?: string;
  limit?: number;
  /** concurrency_limit: running executions with the key, and queued ones before this one. */
  running?: number;
  ahead?: number;
  /** rate_limit: starts in the current interval, and when the oldest of them stops counting. */
  interval_seconds?: number;
  starts?: number;
  next_start_at?: string;
  run_at?: string;
}

/** The limits an execution was queued with (null when its job had none), as the API shows them. */
export interface LimitsView {
  concurrency: { key: string; limit: number } | null;
  rate: { key: string; limit: number; interval_seconds: number } | null;
}

export function limitsView(r: {
  concurrency_key: string | null;
  concurrency_limit: number | null;
  rate_key: string | null;
  rate_limit: number | null;
  rate_interval_seconds: number | null;
}): LimitsView | null {
  const concurrency = r.concurrency_key !== null && r.concurrency_limit !== null ? { key: r.concurrency_key, limit: r.concurrency_limit } : null;
  const rate =
    r.rate_key !== null && r.rate_limit !== null && r.rate_interval_seconds !== null
      ? { key: r.rate_key, limit: r.rate_limit, interval_seconds: r.rate_interval_seconds }
      : null;
  return concurrency || rate ? { concurrency, rate } : null;
}

interface Row {
  id: string;
  run_at: Date;
  later: boolean;
  concurrency_key: string | null;
  concurrency_limit: number | null;
  rate_key: string | null;
  rate_limit: number | null;
  rate_interval_seconds: number | null;
  running: number;
  ahead: number;
  starts: number;
  next_start_at: Date | null;
}

function reason(r: Row): WaitingReason | null {
  if (r.later) return { code: 'scheduled', message: `not due before ${r.run_at.toISOString()}`, run_at: r.run_at.toISOString() };
  if (r.concurrency_key !== null && r.concurrency_limit !== null && r.running + r.ahead >= r.concurrency_limit) {
    const ahead = r.ahead ? `, ${r.ahead} queued before it` : '';
    return {
      code: 'concurrency_limit',
      message: `waiting for a slot: ${r.running} of ${r.concurrency_limit} executions with concurrency key '${r.concurrency_key}' are running${ahead}`,
      key: r.concurrency_key,
      limit: r.concurrency_limit,
      running: r.running,
      ahead: r.ahead,
    };
  }
  if (r.rate_key !== null && r.rate_limit !== null && r.starts >= r.rate_limit) {
    const next = r.next_start_at?.toISOString();
    return {
      code: 'rate_limit',
      message: `rate limit: ${r.starts} starts with key '${r.rate_key}' in the last ${r.rate_interval_seconds} s (limit ${r.rate_limit})${next ? `; the next may start at ${next}` : ''}`,
      key: r.rate_key,
      limit: r.rate_limit,
      interval_seconds: r.rate_interval_seconds ?? undefined,
      starts: r.starts,
      next_start_at: next,
    };
  }
  return null;
}

/** Why each of the queued executions among `ids` waits (those that wait on nothing are left out). */
export async function waitingReasons(db: Queryable, ids: string[]): Promise<Map<string, WaitingReason>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<Row>(
    `SELECT e.id, e.run_at, e.run_at > now() AS later, e.concurrency_key, e.concurrency_limit, e.rate_key, e.rate_limit, e.rate_interval_seconds,
            (SELECT count(*)::int FROM executions r WHERE r.status = 'running' AND r.concurrency_key = e.concurrency_key) AS running,
            (SELECT count(*)::int FROM executions q
             WHERE q.status = 'queued' AND q.concurrency_key = e.concurrency_key AND q.run_at <= now()
               AND (q.run_at, q.created_at, q.id) < (e.run_at, e.created_at, e.id)) AS ahead,
            (SELECT count(*)::int FROM execution_starts s WHERE s.key = e.rate_key AND s.expires_at > now()) AS starts,
            (SELECT min(s.expires_at) FROM execution_starts s WHERE s.key = e.rate_key AND s.expires_at > now()) AS next_start_at
     FROM executions e WHERE e.id = ANY($1::uuid[]) AND e.status = 'queued'`,
    [ids],
  );
  const out = new Map<string, WaitingReason>();
  for (const r of rows) {
    const w = reason(r);
    if (w) out.set(r.id, w);
  }
  return out;
}
