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
import { parseRecordText, type StoredRunRecord } from '../wasm/replay/record.ts';
import { RECORD_MODES, type RecordMode, type WasmRunRecord } from '../wasm/replay/types.ts';

export interface SaveRecordInput {
  /** The record as written (writeRunRecord): its JSON text is stored as it is. */
  record: StoredRunRecord;
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

/** A record ready to be inserted with its run's log row (its blob, if large, already put). */
export interface RecordRow {
  id: string;
  /** Where the text is when it is not in the row. */
  blobKey: string | null;
  /** The record's row values, in RECORD_ROW_COLUMNS order (after wasm_log_id). */
  params: unknown[];
  /** The JSON text's size in bytes. */
  size: number;
}

/** Columns of a wasm_run_records row after (id, wasm_log_id), and the SQL of their values from parameter `first` on. */
const RECORD_ROW_COLUMNS = `execution_id, job_id, step_id, attempt, module_id, module_hash, version, ok, replayable,
                            not_replayable_reason, size_bytes, record, blob_key, expires_at`;
const recordRowValues = (first: number): string => {
  const p = (i: number) => `$${first + i}`;
  return `${p(0)}, ${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)}, ${p(12)}, now() + make_interval(days => ${p(13)})`;
};

/**
 * Prepares a run's record for its row: a text larger than the inline bound goes to the blob store
 * first (so that the row never points at a blob that is not there).
 */
export async function prepareRunRecord(blobs: BlobStore, s: Omit<SaveRecordInput, 'wasmLogId'>): Promise<RecordRow> {
  const r = s.record;
  const id = crypto.randomUUID();
  let blobKey: string | null = null;
  if (r.bytes > s.inlineBytes) {
    blobKey = recordBlobKey(s.jobId, s.executionId, id);
    await blobs.put(blobKey, Buffer.from(r.text));
  }
  return {
    id,
    blobKey,
    size: r.bytes,
    params: [
      s.executionId,
      s.jobId,
      s.stepId,
      s.attempt,
      s.moduleId,
      r.moduleHash,
      r.version,
      r.ok,
      r.replayable,
      r.notReplayableReason,
      r.bytes,
      blobKey === null ? r.text : null,
      blobKey,
      s.retentionDays,
    ],
  };
}

/**
 * The SQL that inserts a prepared record as part of the statement inserting its run's log row:
 * `WITH log AS (INSERT INTO wasm_execution_logs ... RETURNING id) ` + this, with the record's id at
 * parameter `first` and its row's values after (one statement, one round trip, for both rows).
 */
export const recordInsertAfterLog = (first: number): string =>
  `INSERT INTO wasm_run_records (id, wasm_log_id, ${RECORD_ROW_COLUMNS})
   VALUES ($${first}, (SELECT id FROM log), ${recordRowValues(first + 1)}) RETURNING wasm_log_id AS id`;

/** Stores a run's record on its own (the wasm step stores it with its log row: insertWasmLog); returns its size in bytes. */
export async function saveRunRecord(db: Queryable, blobs: BlobStore, s: SaveRecordInput): Promise<number> {
  const row = await prepareRunRecord(blobs, s);
  await db.query(`INSERT INTO wasm_run_records (id, wasm_log_id, ${RECORD_ROW_COLUMNS}) VALUES ($1, $2, ${recordRowValues(3)})`, [
    row.id,
    s.wasmLogId,
    ...row.params,
  ]);
  return row.size;
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
    return parseRecordText(text);
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
