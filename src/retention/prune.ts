import type { Database } from '../db/database.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { FINAL_EXECUTION_STATUSES } from '../state/statuses.ts';
import { deleteRunRecordBlobs, pruneRunRecords } from '../modules/run-records.ts';

/** What retention removes, by kind (the metric's `kind` label). */
export const PRUNE_KINDS = ['executions', 'step_runs', 'wasm_logs', 'files', 'audit_entries'] as const;
export type PruneKind = (typeof PRUNE_KINDS)[number];
export type PruneCounts = Record<PruneKind, number>;

export interface RetentionPeriods {
  /** Days a finished execution is kept after its end; 0: forever. Jobs override it (`retention_days`). */
  executionsDays: number;
  /** Days audit entries are kept; 0: forever. */
  auditDays: number;
  /** Rows per statement. */
  batchSize: number;
}

export interface JobPruned {
  job_id: string;
  job_name: string;
  retention_days: number;
  /** Whether the period is the job's own (`retention_days`) rather than the global one. */
  override: boolean;
  executions: number;
  /** The oldest and newest end time of the executions pruned (what the audit entry keeps of them). */
  oldest_finished_at: string | null;
  newest_finished_at: string | null;
}

export interface PruneResult {
  counts: PruneCounts;
  jobs: JobPruned[];
  audit_cutoff: string | null;
}

const DAY_MS = 86_400_000;

export const emptyCounts = (): PruneCounts => ({ executions: 0, step_runs: 0, wasm_logs: 0, files: 0, audit_entries: 0 });

/** The folder of an execution's files in the blob store (file and sftp steps write there). */
export const executionFilesPrefix = (jobId: string, executionId: string) => `jobs/${jobId}/executions/${executionId}/`;

/**
 * One pass of retention. An execution is pruned whole once it ended longer ago than its job's
 * period: its row, its step rows (with their outputs), its WASM logs and its files, so that a kept
 * execution is always complete. Queued and running executions are never touched (only final
 * statuses are selected, and re-checked under a row lock). Work goes in batches of `batchSize`
 * rows per statement; each batch is one transaction that deletes the files first and rolls back
 * (keeping the rows) if the blob store fails, so no row is lost while its files remain.
 * Audit entries are pruned by their own, longer period.
 */
export async function pruneExpired(db: Database, blobs: BlobStore, p: RetentionPeriods, now = new Date()): Promise<PruneResult> {
  const counts = emptyCounts();
  const jobs: JobPruned[] = [];
  const final = [...FINAL_EXECUTION_STATUSES];
  const { rows: jobRows } = await db.query<{ id: string; name: string; days: number | null }>(
    `SELECT id, name, (definition->>'retention_days')::int AS days FROM jobs ORDER BY name`,
  );
  for (const job of jobRows) {
    const days = job.days ?? p.executionsDays;
    if (days === 0) continue;
    const cutoff = new Date(now.getTime() - days * DAY_MS);
    const pruned: JobPruned = {
      job_id: job.id,
      job_name: job.name,
      retention_days: days,
      override: job.days !== null,
      executions: 0,
      oldest_finished_at: null,
      newest_finished_at: null,
    };
    for (;;) {
      const n = await db.transaction(async (tx) => {
        // created_at < cutoff narrows the scan on executions_job_idx; the age is counted from the end.
        const { rows } = await tx.query<{ id: string; ended: Date }>(
          `SELECT id, coalesce(finished_at, created_at) AS ended FROM executions
           WHERE job_id = $1 AND created_at < $2 AND coalesce(finished_at, created_at) < $2 AND status = ANY($3::text[])
           ORDER BY created_at LIMIT $4
           FOR UPDATE SKIP LOCKED`,
          [job.id, cutoff, final, p.batchSize],
        );
        if (rows.length === 0) return 0;
        const ids = rows.map((r) => r.id);
        for (const id of ids) {
          for (const blob of await blobs.list(executionFilesPrefix(job.id, id))) {
            await blobs.delete(blob.key);
            counts.files++;
          }
        }
        // WASM run records (issue 20) go with their execution; those kept in the blob store, outside the job's area, are deleted here.
        counts.files += await deleteRunRecordBlobs(tx, blobs, ids);
        const c = await tx.query<{ steps: number; wasm: number }>(
          `SELECT (SELECT count(*)::int FROM step_runs WHERE execution_id = ANY($1::uuid[])) AS steps,
                  (SELECT count(*)::int FROM wasm_execution_logs WHERE execution_id = ANY($1::uuid[])) AS wasm`,
          [ids],
        );
        // step_runs and wasm_execution_logs go with their execution (ON DELETE CASCADE).
        const del = await tx.query(`DELETE FROM executions WHERE id = ANY($1::uuid[])`, [ids]);
        counts.step_runs += c.rows[0].steps;
        counts.wasm_logs += c.rows[0].wasm;
        counts.executions += del.rowCount;
        pruned.executions += del.rowCount;
        for (const r of rows) {
          const t = r.ended.toISOString();
          if (!pruned.oldest_finished_at || t < pruned.oldest_finished_at) pruned.oldest_finished_at = t;
          if (!pruned.newest_finished_at || t > pruned.newest_finished_at) pruned.newest_finished_at = t;
        }
        return rows.length;
      });
      if (n < p.batchSize) break;
    }
    if (pruned.executions > 0) jobs.push(pruned);
  }

  // WASM run records past their own period (VECRON_WASM_RECORD_RETENTION_DAYS), blobs first; the runs' logs stay.
  for (;;) {
    const n = await pruneRunRecords(db, blobs, { now, batch: p.batchSize });
    if (n < p.batchSize) break;
  }

  let auditCutoff: Date | null = null;
  if (p.auditDays > 0) {
    auditCutoff = new Date(now.getTime() - p.auditDays * DAY_MS);
    for (;;) {
      const del = await db.query(`DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)`, [auditCutoff, p.batchSize]);
      counts.audit_entries += del.rowCount;
      if (del.rowCount < p.batchSize) break;
    }
  }
  return { counts, jobs, audit_cutoff: auditCutoff?.toISOString() ?? null };
}
