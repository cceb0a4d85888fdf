import type { Queryable } from '../db/database.ts';

/** What /health and the metrics say of maintenance mode (null when the database does not answer). */
export async function maintenanceSummary(db: Queryable): Promise<{ paused: boolean; reason: string | null; since: string | null; paused_jobs: number } | null> {
  try {
    const { rows } = await db.query<{ paused: boolean; reason: string | null; paused_at: Date | null; jobs: number }>(
      `SELECT m.paused, m.reason, m.paused_at, (SELECT count(*)::int FROM job_pauses WHERE paused) AS jobs FROM maintenance_mode m WHERE m.id`,
    );
    const r = rows[0];
    return { paused: r.paused, reason: r.paused ? r.reason : null, since: r.paused ? (r.paused_at?.toISOString() ?? null) : null, paused_jobs: r.jobs };
  } catch {
    return null;
  }
}
