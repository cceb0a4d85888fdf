/**
 * A real guest (WAT, built with wat2wasm) through the wasm executor: uploaded to the registry,
 * granted `file:write` on `reports/**` and `file:read` on everything, it writes a report, reads it
 * back, tries a write outside its grant, and calls time and crypto (served in the worker). The guest gets each answer (kept with set_context),
 * the file is in the job's area of the blob store, and the denial is in the audit log and the metric.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../../src/config/index.ts';
import type { Database } from '../../../src/db/database.ts';
import type { StepRunContext } from '../../../src/executors/executor.ts';
import { execute } from '../../../src/executors/wasm/executor.ts';
import { createMetrics } from '../../../src/metrics.ts';
import { ModuleRegistry } from '../../../src/modules/registry.ts';
import { writePermissions } from '../../../src/modules/repository.ts';
import { FsBlobStore } from '../../../src/storage/fs-store.ts';
import { WasmRuntime } from '../../../src/wasm/runtime/index.ts';
import { enqueueExecution } from '../../../src/state/enqueue.ts';
import { openPgliteTestDb } from '../../helpers/db.ts';
import { makeJob } from '../../helpers/jobs.ts';

const WRITE = '{"path":"reports/out.txt","content":"hello from wasm"}';

/** The calls the guest makes, in order: [function, request, the context key its answer is kept under]. */
const CALLS: [string, string, string][] = [
  ['file_write', WRITE, 'write'],
  ['file_read', '{"path":"reports/out.txt"}', 'read'],
  ['file_write', '{"path":"elsewhere/x.txt","content":"no"}', 'denied'],
  ['time', '{"op":"format","epoch_ms":1767225600000,"format":"yyyy-MM-dd HH:mm"}', 'time'],
  ['crypto', '{"op":"sha256","data":"abc"}', 'sha'],
];

/** The guest: each call's answer is kept under its context key; the file_read answer is the output. */
function guestWat(): string {
  const data: string[] = [];
  let at = 0;
  const put = (s: string) => {
    const off = at;
    data.push(`(data (i32.const ${off}) "${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}")`);
    at += Buffer.byteLength(s);
    return { off, len: Buffer.byteLength(s) };
  };
  const fns = [...new Set(CALLS.map((c) => c[0]))];
  const body = CALLS.map(([fn, req, key]) => {
    const r = put(req);
    const k = put(key);
    const call = `(call $${fn} (i32.const ${r.off}) (i32.const ${r.len}))`;
    return fn === 'file_read'
      ? `(local.set $read ${call}) (call $keep (i32.const ${k.off}) (i32.const ${k.len}) (local.get $read))`
      : `(call $keep (i32.const ${k.off}) (i32.const ${k.len}) ${call})`;
  });
  return `(module
  ${fns.map((f) => `(import "vecron" "${f}" (func $${f} (param i32 i32) (result i64)))`).join('\n  ')}
  (import "vecron" "set_context" (func $set_context (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  ${data.join('\n  ')}
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func $keep (param $k i32) (param $kl i32) (param $a i64)
    (drop (call $set_context (local.get $k) (local.get $kl)
      (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 32))) (i32.wrap_i64 (local.get $a)))))
  (func (export "run") (param i32 i32) (result i64)
    (local $read i64)
    ${body.join('\n    ')}
    (local.get $read)))`;
}

describe('a WAT guest calls file_write, file_read and a denied write through the wasm executor', () => {
  let db: Database;
  let dir: string;
  let runtime: WasmRuntime;
  let registry: ModuleRegistry;
  let bytes: Buffer;
  before(async () => {
    db = await openPgliteTestDb();
    dir = mkdtempSync(join(tmpdir(), 'vecron-files-guest-'));
    writeFileSync(join(dir, 'guest.wat'), guestWat());
    execFileSync('wat2wasm', ['-o', join(dir, 'guest.wasm'), join(dir, 'guest.wat')]);
    bytes = readFileSync(join(dir, 'guest.wasm'));
    runtime = new WasmRuntime({ poolSize: 1 });
  });
  after(async () => {
    await runtime.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the guest gets each answer; the file is in the job area; the denial is audited and counted', async () => {
    const config = loadConfig({ VECRON_DATA_DIR: dir });
    const blobs = new FsBlobStore(join(dir, 'blobs'));
    const logger = pino({ level: 'silent' });
    const metrics = createMetrics();
    registry = new ModuleRegistry({ db, blobs, config, runtime: () => runtime, logger, metrics });
    const module = await registry.upload({ bytes, name: 'files-guest', version: '1.0.0', author: 'tests' }, 'tests');
    await writePermissions(
      db,
      module.id,
      [
        { type: 'file:write', resource_pattern: 'reports/**' },
        { type: 'file:read', resource_pattern: null },
      ],
      'tests',
      true,
    );
    const writes: Record<string, unknown> = {};
    // The run's log row belongs to an execution: a real job and execution.
    const job = await makeJob(db, { steps: [{ id: 'files', type: 'wasm', config: { module_id: module.id, function_name: 'run' } }] });
    const executionId = (await enqueueExecution(db, job, { trigger: { type: 'manual', time: new Date().toISOString() } }))!;
    const ctx: StepRunContext = {
      jobId: job.id,
      executionId,
      stepId: 'files',
      attempt: 1,
      signal: new AbortController().signal,
      deadline: Date.now() + 30_000,
      context: {},
      logger,
      services: { db, blobs, config, logger, metrics, modules: registry, wasm: () => runtime, variable: () => undefined },
      setContext: (w) => Object.assign(writes, w),
    };
    const output = await execute(
      { module_id: module.id, function_name: 'run', fuel_limit: 10_000_000, timeout_seconds: 10, memory_limit_mb: 16, input: {} },
      ctx,
    );
    assert.deepEqual(output, { path: 'reports/out.txt', content: 'hello from wasm', encoding: 'utf8', size: 15 });
    assert.deepEqual(writes.write, { path: 'reports/out.txt', size: 15, sha256: createHash('sha256').update('hello from wasm').digest('hex') });
    assert.equal((await blobs.get(`jobs/${ctx.jobId}/reports/out.txt`)).toString(), 'hello from wasm');
    assert.deepEqual(writes.denied, {
      error: { code: 'permission_denied', message: "permission denied: file:write for 'elsewhere/x.txt' (no resource pattern of the module matches)" },
    });
    assert.equal(await blobs.stat(`jobs/${ctx.jobId}/elsewhere/x.txt`), null);
    // time and crypto are answered inside the worker (luxon and node:crypto load there).
    assert.equal((writes.time as any).text, '2026-01-01 07:00');
    assert.equal((writes.sha as any).hex, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const { rows } = await db.query<any>("SELECT * FROM audit_log WHERE action = 'wasm.host.denied' AND resource_id = $1", [module.id]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].details.last.resource, 'elsewhere/x.txt');
    assert.match(await metrics.registry.metrics(), /vecron_wasm_host_denied_total\{function="file_write",permission="file:write"\} 1/);
    // The run's record: the three calls, the denial with its permission.
    const log = (await db.query<any>('SELECT host_calls FROM wasm_execution_logs WHERE execution_id = $1', [executionId])).rows[0];
    assert.deepEqual(
      log.host_calls.map((c: any) => [c.function, c.target, c.outcome, c.permission ?? null, c.served]),
      [
        ['file_write', 'reports/out.txt', 'ok', null, 'host'],
        ['file_read', 'reports/out.txt', 'ok', null, 'host'],
        ['file_write', 'elsewhere/x.txt', 'permission_denied', 'file:write', 'host'],
        ['time', 'format Asia/Ho_Chi_Minh', 'ok', null, 'worker'],
        ['crypto', 'sha256', 'ok', null, 'worker'],
      ],
    );
  });
});
