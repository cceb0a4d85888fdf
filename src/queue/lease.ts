import type { Queryable } from '../db/database.ts';

const RENEW_SQL = `WITH mine AS MATERIALIZED (
       SELECT id FROM executions WHERE id = ANY($1::uuid[]) AND locked_by = $2 AND status = 'running'
       ORDER BY id FOR NO KEY UPDATE
     )
     UPDATE executions e SET lease_expires_at = now() + make_interval(secs => $3)
     FROM mine WHERE e.id = mine.id
     RETURNING e.id`;

/**
 * Extends the leases of executions this worker still runs; returns the ids it still owns. The rows
 * are locked in id order, as the group commit of successes locks them (src/state/finish.ts): two
 * statements of one worker over the same rows in different orders deadlock (seen with 1,000 held
 * at once: a heartbeat against a batch of successes).
 */
export async function renewLeases(db: Queryable, workerId: string, ids: string[], leaseSeconds: number): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(RENEW_SQL, [ids, workerId, leaseSeconds]);
  return new Set(rows.map((r) => r.id));
}
