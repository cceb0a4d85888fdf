/**
 * Counters per key over a fixed window, in the database so every cluster member sees the same
 * count (failed webhook signatures per source address and per job).
 */
import type { Queryable } from '../db/database.ts';

/** Adds one to `key` (a new window starts when the last one is over); returns the count now. */
export async function bumpCounter(db: Queryable, key: string, windowSeconds: number): Promise<number> {
  const { rows } = await db.query<{ count: number }>(
    `INSERT INTO request_counters (key, count, expires_at) VALUES ($1, 1, now() + make_interval(secs => $2))
     ON CONFLICT (key) DO UPDATE SET
       count = CASE WHEN request_counters.expires_at <= now() THEN 1 ELSE request_counters.count + 1 END,
       expires_at = CASE WHEN request_counters.expires_at <= now() THEN now() + make_interval(secs => $2) ELSE request_counters.expires_at END
     RETURNING count`,
    [key, windowSeconds],
  );
  // Now and then, expired counters go (any member may do it; it is idempotent).
  if (Math.random() < 0.02) await db.query('DELETE FROM request_counters WHERE expires_at <= now()');
  return rows[0].count;
}

/** The first of `limits` whose key has reached its limit in the current window, with the seconds left. */
export async function overLimit(db: Queryable, limits: { key: string; max: number }[]): Promise<{ key: string; retryAfter: number } | null> {
  const { rows } = await db.query<{ key: string; count: number; retry_after: number }>(
    `SELECT key, count, greatest(1, ceil(extract(epoch FROM expires_at - now())))::int AS retry_after
     FROM request_counters WHERE key = ANY($1::text[]) AND expires_at > now()`,
    [limits.map((l) => l.key)],
  );
  for (const l of limits) {
    const r = rows.find((x) => x.key === l.key);
    if (r && r.count >= l.max) return { key: l.key, retryAfter: r.retry_after };
  }
  return null;
}
