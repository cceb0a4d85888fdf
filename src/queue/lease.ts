import type { Queryable } from '../db/database.ts';

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
