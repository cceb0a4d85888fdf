/**
 * The store of WASM run records (issue 20, migration 017) on PGlite and PostgreSQL: a small record
 * in its row and a large one in the blob store come back as they went in; the last records of a
 * job's step, newest first; records past their expiry are pruned with their blobs, and the
 * retention sweep deletes the blobs of the executions it prunes (their rows cascade).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../src/db/database.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { getRunRecord, prepareRunRecord, pruneRunRecords, recentRunRecords, saveRunRecord, strictestMode } from '../../src/modules/run-records.ts';
import { insertWasmLog } from '../../src/modules/execution-logs.ts';
import type { ModuleRow } from '../../src/modules/repository.ts';
import type { WasmRunResult } from '../../src/wasm/runtime/types.ts';
import { pruneExpired } from '../../src/retention/prune.ts';
import { storedRecordOf } from '../../src/wasm/replay/record.ts';
import { WASM_RUN_RECORD_VERSION, type WasmRunRecord } from '../../src/wasm/replay/types.ts';
import { forEachDatabase, openTestDb } from '../helpers/db.ts';
import { makeJob } from '../helpers/jobs.ts';

const HASH = 'a'.repeat(64);

function record(executionId: string, body: string): WasmRunRecord {
  return {
    version: WASM_RUN_RECORD_VERSION,
    execution_id: executionId,
    step_id: 'w',
    attempt: 1,
    recorded_at: new Date().toISOString(),
    module: { id: null, name: 'm', version: '1.0.0', hash: HASH },
    function: 'run',
    limits: {
      fuel: 1,
      init_fuel: 1,
      memory_mb: 1,
      table_limit: 1,
      timeout_ms: 1,
      stack_kb: 1,
      max_output_bytes: 1,
      max_host_request_bytes: 1,
      max_host_response_bytes: 1,
    },
    input_json: JSON.stringify({ body }),
    context_reads: [],
    context_chars: 2,
    env: {},
    host_calls: [
      {
        seq: 0,
        function: 'http_request',
        request: '{"method":"GET","url":"http://x/"}',
        response: `{"status":200,"body":${JSON.stringify(body)}}`,
        outcome: 'ok',
        served: 'host',
        target: 'http://x/',
      },
    ],
    wasi: { clocks: [{ clock: 0, ns: '1796190309145000000' }], random: ['AAEC'], stdin_bytes: 0 },
    result: {
      ok: true,
      output_json: '{"z":1,"a":2}',
      fuel_consumed: 10,
      init_fuel_consumed: 0,
      memory_peak_bytes: 65536,
      exit_code: null,
      context_writes_json: '{}',
      stdout: '',
      stderr: '',
      duration_ms: 1,
    },
    cut: [],
    masked: [],
    replayable: true,
  };
}

forEachDatabase((kind) => {
  describe(`${kind}: WASM run records`, () => {
    let db: Database;
    let blobs: FsBlobStore;
    let dir: string;
    let jobId: string;
    before(async () => {
      db = await openTestDb(kind);
      dir = mkdtempSync(join(tmpdir(), 'vecron-records-'));
      blobs = new FsBlobStore(dir);
      jobId = (await makeJob(db, { steps: [{ id: 'w', type: 'http', config: { url: 'http://127.0.0.1:9/' } }] })).id;
    });
    after(async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** An execution that ended `daysAgo` days ago, with one WASM log row. */
    async function execution(daysAgo = 0): Promise<{ id: string; logId: string }> {
      const { rows } = await db.query<{ id: string }>(
        `INSERT INTO executions (job_id, job_version, job_snapshot, status, trigger_type, created_at, finished_at)
         VALUES ($1, 1, '{}', 'succeeded', 'manual', now() - make_interval(days => $2), now() - make_interval(days => $2)) RETURNING id`,
        [jobId, daysAgo],
      );
      const log = await db.query<{ id: string }>(
        `INSERT INTO wasm_execution_logs (execution_id, step_id, module_name, module_version, function_name, fuel_consumed, memory_used_bytes, duration_ms)
         VALUES ($1, 'w', 'm', '1.0.0', 'run', 1, 1, 1) RETURNING id`,
        [rows[0].id],
      );
      return { id: rows[0].id, logId: log.rows[0].id };
    }
    const save = (e: { id: string; logId: string }, rec: WasmRunRecord, inlineBytes: number, retentionDays = 30) =>
      saveRunRecord(db, blobs, {
        record: storedRecordOf(rec),
        wasmLogId: e.logId,
        executionId: e.id,
        jobId,
        stepId: 'w',
        attempt: 1,
        moduleId: null,
        inlineBytes,
        retentionDays,
      });

    it('a small record is kept in its row, a large one in the blob store; both come back exactly (texts, key order)', async () => {
      const small = await execution();
      const smallRec = record(small.id, 'short');
      const size = await save(small, smallRec, 1 << 20);
      assert.equal(size, Buffer.byteLength(JSON.stringify(smallRec)));
      const big = await execution();
      const bigRec = record(big.id, 'x'.repeat(10_000));
      await save(big, bigRec, 1024);
      const rows = (await db.query<any>('SELECT execution_id, record, blob_key FROM wasm_run_records WHERE job_id = $1', [jobId])).rows;
      const bySmall = rows.find((r) => r.execution_id === small.id);
      const byBig = rows.find((r) => r.execution_id === big.id);
      assert.equal(bySmall.blob_key, null);
      assert.equal(byBig.record, null);
      assert.ok((await blobs.get(byBig.blob_key)).length > 10_000);
      assert.equal(JSON.stringify(await getRunRecord(db, blobs, { executionId: small.id, stepId: 'w' })), JSON.stringify(smallRec));
      assert.equal(JSON.stringify(await getRunRecord(db, blobs, { executionId: big.id })), JSON.stringify(bigRec));
      assert.equal(await getRunRecord(db, blobs, { executionId: big.id, stepId: 'other' }), null);
      assert.equal(await getRunRecord(db, blobs, { executionId: big.id, attempt: 2 }), null);

      const recent = await recentRunRecords(db, blobs, { jobId, stepId: 'w', limit: 1 });
      assert.deepEqual(
        recent.map((r) => r.execution_id),
        [big.id],
      );
    });

    it('records past their expiry are pruned with their blobs; the retention sweep deletes the blobs of the executions it prunes', async () => {
      const expired = await execution();
      await save(expired, record(expired.id, 'y'.repeat(5000)), 0, 1);
      const key = (await db.query<any>('SELECT blob_key FROM wasm_run_records WHERE execution_id = $1', [expired.id])).rows[0].blob_key;
      assert.equal(await pruneRunRecords(db, blobs, { now: new Date() }), 0, 'not expired yet');
      assert.equal(await pruneRunRecords(db, blobs, { now: new Date(Date.now() + 2 * 86_400_000) }), 1);
      assert.equal((await db.query('SELECT 1 FROM wasm_run_records WHERE execution_id = $1', [expired.id])).rows.length, 0);
      assert.equal(await blobs.stat(key), null);
      assert.equal((await db.query('SELECT 1 FROM wasm_execution_logs WHERE execution_id = $1', [expired.id])).rows.length, 1, 'the run log stays');

      const old = await execution(40);
      await save(old, record(old.id, 'z'.repeat(5000)), 0, 365);
      const oldKey = (await db.query<any>('SELECT blob_key FROM wasm_run_records WHERE execution_id = $1', [old.id])).rows[0].blob_key;
      const r = await pruneExpired(db, blobs, { executionsDays: 30, auditDays: 0, batchSize: 100 });
      assert.ok(r.counts.executions >= 1);
      assert.equal((await db.query('SELECT 1 FROM wasm_run_records WHERE execution_id = $1', [old.id])).rows.length, 0, 'the row cascaded');
      assert.equal(await blobs.stat(oldKey), null, 'the blob went with it');
    });

    it("a wasm step's log row and its record go in one statement, the record pointing at the row; a large record's text in the blob store", async () => {
      const { rows } = await db.query<{ id: string }>(
        `INSERT INTO executions (job_id, job_version, job_snapshot, status, trigger_type) VALUES ($1, 1, '{}', 'running', 'manual') RETURNING id`,
        [jobId],
      );
      const executionId = rows[0].id;
      const module = { id: null, name: 'm', version: '1.0.0' } as unknown as ModuleRow;
      const result = {
        fuelConsumed: 10,
        initFuelConsumed: 0,
        memoryPeakBytes: 65536,
        durationMs: 1,
        logs: [],
        hostCalls: [],
        hostCallsDropped: 0,
      } as unknown as WasmRunResult;
      for (const inlineBytes of [1 << 20, 0]) {
        const rec = record(executionId, `b${inlineBytes}`);
        const row = await prepareRunRecord(blobs, {
          record: storedRecordOf(rec),
          executionId,
          jobId,
          stepId: 'w',
          attempt: 1,
          moduleId: null,
          inlineBytes,
          retentionDays: 30,
        });
        const logId = await insertWasmLog(db, { executionId, stepId: 'w', attempt: 1, module, functionName: 'run', result, error: null }, row);
        const kept = await db.query<any>('SELECT wasm_log_id, size_bytes, blob_key FROM wasm_run_records WHERE id = $1', [row.id]);
        assert.equal(kept.rows[0].wasm_log_id, logId);
        assert.equal(Number(kept.rows[0].size_bytes), Buffer.byteLength(JSON.stringify(rec)));
        assert.equal(kept.rows[0].blob_key === null, inlineBytes > 0);
        assert.equal((await db.query('SELECT 1 FROM wasm_execution_logs WHERE id = $1', [logId])).rows.length, 1);
      }
      const back = await recentRunRecords(db, blobs, { jobId, stepId: 'w', limit: 2 });
      assert.deepEqual(back.map((r) => JSON.parse(r.input_json).body).sort(), ['b0', `b${1 << 20}`]);
      // A log row without a record is the plain insert.
      const alone = await insertWasmLog(db, { executionId, stepId: 'w', attempt: 2, module, functionName: 'run', result, error: null });
      assert.equal((await db.query('SELECT 1 FROM wasm_run_records WHERE wasm_log_id = $1', [alone])).rows.length, 0);
    });

    it('the strictest recording setting wins', () => {
      assert.equal(strictestMode('all', null, undefined), 'all');
      assert.equal(strictestMode('all', 'failed', undefined), 'failed');
      assert.equal(strictestMode('failed', null, 'off'), 'off');
      assert.equal(strictestMode('off', 'all', 'all'), 'off');
    });
  });
});
