/**
 * The complete records of WASM runs (issue 20, src/wasm/replay/types.ts), one row per recorded run
 * in wasm_run_records (migration 017), next to its wasm_execution_logs row. A record is stored as
 * its JSON text: in the row when small, in the blob store (`wasm-records/{job}/{execution}/{id}.json`,
 * outside every job's file area: no guest can read it) when larger than the inline bound.
 *
 * Deleting: a row goes with its wasm_execution_logs row and its execution (ON DELETE CASCADE); a
 * blob does not, so whoever deletes rows deletes their blobs first: pruneRunRecords (the expired
 * ones), deleteRunRecordBlobs (those of executions about to be deleted).
 */
import type { Queryable } from '../db/database.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { checkReplayable } from '../wasm/replay/replay.ts';
import { RECORD_MODES, type RecordMode, type WasmRunRecord } from '../wasm/replay/types.ts';

export interface SaveRecordInput {
  record: WasmRunRecord;
  wasmLogId: string;
  executionId: string;
  jobId: string;
  stepId: string;
  attempt: number;
  moduleId: string | null;
  /** Larger JSON texts go to the blob store (VECRON_WASM_RECORD_INLINE_BYTES). */
  inlineBytes: number;
  retentionDays: number;
}

export const recordBlobKey = (jobId: string, executionId: string, id: string): string => `wasm-records/${jobId}/${executionId}/${id}.json`;

/** Stores a run's record; returns its size in bytes (the JSON text). */
export async function saveRunRecord(db: Queryable, blobs: BlobStore, s: SaveRecordInput): Promise<number> {
  const text = JSON.stringify(s.record);
  const size = Buffer.byteLength(text);
  const id = crypto.randomUUID();
  let blobKey: string | null = null;
  if (size > s.inlineBytes) {
    blobKey = recordBlobKey(s.jobId, s.executionId, id);
    await blobs.put(blobKey, Buffer.from(text));
  }
  await db.query(
    `INSERT INTO wasm_run_records (id, wasm_log_id, execution_id, job_id, step_id, attempt, module_id, module_hash, version, ok, replayable,
                                   not_replayable_reason, size_bytes, record, blob_key, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now() + make_interval(days => $16))`,
    [
      id,
      s.wasmLogId,
      s.executionId,
      s.jobId,
      s.stepId,
      s.attempt,
      s.moduleId,
      s.record.module.hash,
      s.record.version,
      s.record.result.ok,
      s.record.replayable,
      s.record.not_replayable_reason ?? null,
      size,
      blobKey === null ? text : null,
      blobKey,
      s.retentionDays,
    ],
  );
  return size;
}

async function textOf(blobs: BlobStore, row: { record: string | null; blob_key: string | null }): Promise<string | null> {
  if (row.record !== null) return row.record;
  if (row.blob_key === null) return null;
  try {
    return (await blobs.get(row.blob_key)).toString('utf8');
  } catch {
    return null; // deleted under us: as if there were no record
  }
}

const parse = (text: string | null): WasmRunRecord | null => {
  if (text === null) return null;
  try {
    return JSON.parse(text) as WasmRunRecord;
  } catch {
    return null;
  }
};

/** The record of a step's run: the given attempt, or the latest; stepId optional when the execution has one recorded step. */
export async function getRunRecord(
  db: Queryable,
  blobs: BlobStore,
  q: { executionId: string; stepId?: string; attempt?: number },
): Promise<WasmRunRecord | null> {
  const { rows } = await db.query<{ record: string | null; blob_key: string | null; step_id: string }>(
    `SELECT record, blob_key, step_id FROM wasm_run_records
      WHERE execution_id = $1 AND ($2::text IS NULL OR step_id = $2) AND ($3::int IS NULL OR attempt = $3)
      ORDER BY attempt DESC, created_at DESC LIMIT 2`,
    [q.executionId, q.stepId ?? null, q.attempt ?? null],
  );
  if (rows.length === 0) return null;
  return parse(await textOf(blobs, rows[0]));
}

/** Which steps of an execution have records (for a useful 404 when none was named). */
export async function recordedSteps(db: Queryable, executionId: string): Promise<string[]> {
  const { rows } = await db.query<{ step_id: string }>('SELECT DISTINCT step_id FROM wasm_run_records WHERE execution_id = $1 ORDER BY step_id', [executionId]);
  return rows.map((r) => r.step_id);
}

/** The last `limit` records of a job's step, newest first (the shadow test); `replayableOnly` leaves out the others. */
export async function recentRunRecords(
  db: Queryable,
  blobs: BlobStore,
  q: { jobId: string; stepId: string; limit: number; replayableOnly?: boolean },
): Promise<WasmRunRecord[]> {
  const { rows } = await db.query<{ record: string | null; blob_key: string | null }>(
    `SELECT record, blob_key FROM wasm_run_records
      WHERE job_id = $1 AND step_id = $2 AND ($4::boolean IS NOT TRUE OR replayable)
      ORDER BY created_at DESC, id LIMIT $3`,
    [q.jobId, q.stepId, q.limit, q.replayableOnly ?? false],
  );
  const out: WasmRunRecord[] = [];
  for (const r of rows) {
    const rec = parse(await textOf(blobs, r));
    if (rec !== null && (!q.replayableOnly || checkReplayable(rec).ok)) out.push(rec);
  }
  return out;
}

/** Deletes the records past their expiry (their blobs first); returns how many. For the retention sweep. */
export async function pruneRunRecords(db: Queryable, blobs: BlobStore, opts: { now?: Date; batch?: number } = {}): Promise<number> {
  const { rows } = await db.query<{ id: string; blob_key: string | null }>(
    'SELECT id, blob_key FROM wasm_run_records WHERE expires_at < $1 ORDER BY expires_at LIMIT $2',
    [opts.now ?? new Date(), opts.batch ?? 1000],
  );
  for (const r of rows) if (r.blob_key !== null) await blobs.delete(r.blob_key).catch(() => {});
  if (rows.length > 0) await db.query('DELETE FROM wasm_run_records WHERE id = ANY($1::uuid[])', [rows.map((r) => r.id)]);
  return rows.length;
}

/** Deletes the blobs of the records of these executions (call before deleting the executions: the rows cascade, blobs do not). */
export async function deleteRunRecordBlobs(db: Queryable, blobs: BlobStore, executionIds: readonly string[]): Promise<number> {
  if (executionIds.length === 0) return 0;
  const { rows } = await db.query<{ blob_key: string }>('SELECT blob_key FROM wasm_run_records WHERE execution_id = ANY($1::uuid[]) AND blob_key IS NOT NULL', [
    executionIds,
  ]);
  for (const r of rows) await blobs.delete(r.blob_key).catch(() => {});
  return rows.length;
}

/** The stricter of several recording settings (off > failed > all); unset ones count as `all`. */
export function strictestMode(...modes: (RecordMode | null | undefined)[]): RecordMode {
  let rank = 0;
  for (const m of modes) if (m) rank = Math.max(rank, RECORD_MODES.indexOf(m));
  return RECORD_MODES[rank];
}

/** Sets a module's own recording setting (null: the server's). */
export async function setModuleRecordMode(db: Queryable, moduleId: string, mode: RecordMode | null): Promise<void> {
  await db.query('UPDATE wasm_modules SET record_mode = $2, updated_at = now() WHERE id = $1', [moduleId, mode]);
}
