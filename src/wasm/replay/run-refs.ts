/**
 * The last N recorded runs of a job's step, as references (execution, attempt), newest first (the
 * index wasm_run_records_job_step_idx): a shadow test loads their records one at a time, so it never
 * holds N records at once.
 */
import type { Queryable } from '../../db/database.ts';

export interface RunRef {
  execution_id: string;
  attempt: number;
}

export async function recentRunRefs(db: Queryable, q: { jobId: string; stepId: string; limit: number }): Promise<RunRef[]> {
  const { rows } = await db.query<{ execution_id: string; attempt: number }>(
    `SELECT execution_id, attempt FROM wasm_run_records
      WHERE job_id = $1 AND step_id = $2
      ORDER BY created_at DESC, id DESC
      LIMIT $3`,
    [q.jobId, q.stepId, q.limit],
  );
  return rows.map((r) => ({ execution_id: r.execution_id, attempt: Number(r.attempt) }));
}
