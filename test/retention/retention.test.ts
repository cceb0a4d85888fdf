/**
 * Retention: executions (with their step rows and outputs, WASM logs and files) past their job's
 * period, or the global one, are pruned in batches, and nothing else; queued and running ones
 * never; audit entries by their own period. Ages are set in the rows (days ago), not waited for.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../src/db/database.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { createMetrics } from '../../src/metrics.ts';
import { loadConfig } from '../../src/config/index.ts';
import { executionFilesPrefix, pruneExpired } from '../../src/retention/prune.ts';
import { runRetention } from '../../src/retention/runner.ts';
import { forEachDatabase, openTestDb } from '../helpers/db.ts';
import { makeJob, silentLogger } from '../helpers/jobs.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, assertError, flatJob } from '../api/support.ts';

const STEP = { id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/' } };

/** An execution of `jobId` that ended `endedDaysAgo` days ago (or is still `status`), with 2 step rows, a WASM log and 2 files. */
async function seedExecution(
  db: Database,
  blobs: FsBlobStore,
  jobId: string,
  status: string,
  createdDaysAgo: number,
  endedDaysAgo: number | null,
): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO executions (job_id, job_version, job_snapshot, status, trigger_type, created_at, finished_at)
     VALUES ($1, 1, '{}', $2, 'manual', now() - make_interval(days => $3), CASE WHEN $4::int IS NULL THEN NULL ELSE now() - make_interval(days => $4::int) END)
     RETURNING id`,
    [jobId, status, createdDaysAgo, endedDaysAgo],
  );
  const id = rows[0].id;
  for (const [pos, step] of ['a', 'b'].entries()) {
    await db.query(
      `INSERT INTO step_runs (execution_id, step_id, position, type, status, output) VALUES ($1, $2, $3, 'http', 'succeeded', '{"account":"123"}')`,
      [id, step, pos],
    );
  }
  await db.query(
    `INSERT INTO wasm_execution_logs (execution_id, step_id, module_name, module_version, function_name, fuel_consumed, memory_used_bytes, duration_ms, created_at)
     VALUES ($1, 'a', 'm', '1.0.0', 'run', 1, 1, 1, now() - make_interval(days => $2))`,
    [id, createdDaysAgo],
  );
  await blobs.put(`${executionFilesPrefix(jobId, id)}out.csv`, Buffer.from('a,b\n'));
  await blobs.put(`${executionFilesPrefix(jobId, id)}in/statement.pdf`, Buffer.from('%PDF'));
  return id;
}

forEachDatabase((kind) => {
  describe(`${kind}: retention`, () => {
    let db: Database;
    let blobs: FsBlobStore;
    let dir: string;
    before(async () => {
      db = await openTestDb(kind);
      dir = mkdtempSync(join(tmpdir(), 'vecron-retention-'));
      blobs = new FsBlobStore(dir);
    });
    after(async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('prunes exactly the executions past their period (a job override beats the global one), with their steps, WASM logs and files', async () => {
      const global = await makeJob(db, { steps: [STEP] });
      const short = await makeJob(db, { steps: [STEP], retention_days: 7 });
      const long = await makeJob(db, { steps: [STEP], retention_days: 365 });
      const forever = await makeJob(db, { steps: [STEP], retention_days: 0 });
      const gone: string[] = [];
      const kept: string[] = [];
      // global period 90 days
      gone.push(await seedExecution(db, blobs, global.id, 'succeeded', 100, 100));
      gone.push(await seedExecution(db, blobs, global.id, 'dead_lettered', 95, 91));
      gone.push(await seedExecution(db, blobs, global.id, 'skipped', 200, 200));
      kept.push(await seedExecution(db, blobs, global.id, 'failed', 100, 80)); // created long ago, ended within the period
      kept.push(await seedExecution(db, blobs, global.id, 'succeeded', 10, 10));
      kept.push(await seedExecution(db, blobs, global.id, 'running', 120, null)); // never: still running
      kept.push(await seedExecution(db, blobs, global.id, 'queued', 120, null)); // never: still queued
      // job override 7 days: shorter than the global one
      gone.push(await seedExecution(db, blobs, short.id, 'failed', 8, 8));
      kept.push(await seedExecution(db, blobs, short.id, 'succeeded', 6, 6));
      // job override 365 days: longer than the global one
      kept.push(await seedExecution(db, blobs, long.id, 'succeeded', 100, 100));
      gone.push(await seedExecution(db, blobs, long.id, 'cancelled', 400, 400));
      // job override 0: forever
      kept.push(await seedExecution(db, blobs, forever.id, 'succeeded', 3000, 3000));

      const result = await pruneExpired(db, blobs, { executionsDays: 90, auditDays: 0, batchSize: 500 });
      assert.deepEqual(result.counts, {
        executions: gone.length,
        step_runs: gone.length * 2,
        wasm_logs: gone.length,
        files: gone.length * 2,
        audit_entries: 0,
      });

      const left = (await db.query<{ id: string }>(`SELECT id FROM executions`)).rows.map((r) => r.id).sort();
      assert.deepEqual(left, [...kept].sort());
      const steps = await db.query<{ execution_id: string; output: unknown }>(`SELECT execution_id, output FROM step_runs`);
      assert.deepEqual([...new Set(steps.rows.map((r) => r.execution_id))].sort(), [...kept].sort());
      assert.ok(
        steps.rows.every((r) => (r.output as any).account === '123'),
        'kept executions keep their step outputs',
      );
      const logs = await db.query<{ execution_id: string }>(`SELECT execution_id FROM wasm_execution_logs`);
      assert.deepEqual(logs.rows.map((r) => r.execution_id).sort(), [...kept].sort());
      const files = (await blobs.list('jobs/')).map((b) => b.key).sort();
      const jobOf = new Map<string, string>();
      for (const j of [global, short, long, forever]) {
        for (const r of (await db.query<{ id: string }>(`SELECT id FROM executions WHERE job_id = $1`, [j.id])).rows) jobOf.set(r.id, j.id);
      }
      assert.deepEqual(
        files,
        kept.flatMap((id) => [`${executionFilesPrefix(jobOf.get(id)!, id)}in/statement.pdf`, `${executionFilesPrefix(jobOf.get(id)!, id)}out.csv`]).sort(),
      );

      // What the audit entry keeps of them: per job, how many, by which period.
      const byJob = Object.fromEntries(result.jobs.map((j) => [j.job_name, [j.executions, j.retention_days, j.override]]));
      assert.deepEqual(byJob, { [global.name]: [3, 90, false], [short.name]: [1, 7, true], [long.name]: [1, 365, true] });

      // A second pass finds nothing left to do.
      const again = await pruneExpired(db, blobs, { executionsDays: 90, auditDays: 0, batchSize: 500 });
      assert.equal(again.counts.executions + again.counts.files, 0);
      await db.query(`DELETE FROM jobs`);
    });

    it('works in bounded batches: more expired executions than the batch size are all pruned', async () => {
      const job = await makeJob(db, { steps: [STEP] });
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push(await seedExecution(db, blobs, job.id, 'succeeded', 50 + i, 50 + i));
      const young = await seedExecution(db, blobs, job.id, 'succeeded', 1, 1);
      const r = await pruneExpired(db, blobs, { executionsDays: 30, auditDays: 0, batchSize: 2 });
      assert.equal(r.counts.executions, 7);
      assert.deepEqual(
        (await db.query<{ id: string }>(`SELECT id FROM executions WHERE job_id = $1`, [job.id])).rows.map((x) => x.id),
        [young],
      );
      assert.equal((await blobs.list(`jobs/${job.id}/`)).length, 2);
      await db.query(`DELETE FROM jobs`);
    });

    it('a file the blob store cannot delete keeps its execution (nothing is half pruned); the next run finishes it', async () => {
      const job = await makeJob(db, { steps: [STEP] });
      const id = await seedExecution(db, blobs, job.id, 'succeeded', 100, 100);
      const failing = Object.create(blobs) as FsBlobStore;
      failing.delete = async () => {
        throw new Error('blob store unavailable');
      };
      await assert.rejects(pruneExpired(db, failing, { executionsDays: 90, auditDays: 0, batchSize: 10 }), /blob store unavailable/);
      assert.equal((await db.query(`SELECT 1 FROM executions WHERE id = $1`, [id])).rows.length, 1);
      assert.equal((await db.query(`SELECT 1 FROM step_runs WHERE execution_id = $1`, [id])).rows.length, 2);
      const r = await pruneExpired(db, blobs, { executionsDays: 90, auditDays: 0, batchSize: 10 });
      assert.equal(r.counts.executions, 1);
      assert.deepEqual(await blobs.list(`jobs/${job.id}/`), []);
      await db.query(`DELETE FROM jobs`);
    });

    it('prunes audit entries by their own period only; 0 keeps them all', async () => {
      await db.query(`DELETE FROM audit_log`);
      for (const days of [3000, 2600, 2000, 100, 0]) {
        await db.query(`INSERT INTO audit_log (at, action, outcome) VALUES (now() - make_interval(days => $1), 'test.entry', 'success')`, [days]);
      }
      const none = await pruneExpired(db, blobs, { executionsDays: 90, auditDays: 0, batchSize: 1 });
      assert.equal(none.counts.audit_entries, 0);
      const r = await pruneExpired(db, blobs, { executionsDays: 90, auditDays: 2557, batchSize: 1 });
      assert.equal(r.counts.audit_entries, 2);
      const left = await db.query<{ days: number }>(`SELECT round(extract(epoch FROM now() - at) / 86400)::int AS days FROM audit_log ORDER BY at`);
      assert.deepEqual(
        left.rows.map((x) => x.days),
        [2000, 100, 0],
      );
    });

    it('runs one process at a time, once per interval; counts go to the metric and an audit entry', async () => {
      const job = await makeJob(db, { steps: [STEP] });
      await seedExecution(db, blobs, job.id, 'succeeded', 100, 100);
      await seedExecution(db, blobs, job.id, 'succeeded', 5, 5);
      const metrics = createMetrics();
      const deps = {
        db,
        blobs,
        logger: silentLogger,
        metrics,
        periods: { executionsDays: 90, auditDays: 0, batchSize: 100 },
        intervalSeconds: 3600,
        node: 'n1',
      };
      await db.query(`UPDATE retention_runs SET finished_at = NULL`);
      // Another process holds the lock (a session of its own on PostgreSQL; PGlite has one connection, so there it is this one).
      if (kind === 'postgres') {
        const { openPostgres } = await import('../../src/db/postgres.ts');
        const other = await openPostgres((db as any).url, { poolSize: 1 });
        await other.withSession(async (s) => {
          await s.query('SELECT pg_advisory_lock(7265736533)');
          assert.deepEqual(await runRetention(deps), { ran: false, reason: 'busy' });
          await s.query('SELECT pg_advisory_unlock(7265736533)');
        });
        await other.close();
      }
      const first = await runRetention(deps);
      assert.equal(first.ran, true);
      assert.equal(first.ran && first.run.counts.executions, 1);
      // Within the interval: not due, whoever asks.
      assert.deepEqual(await runRetention({ ...deps, node: 'n2' }), { ran: false, reason: 'not_due' });
      const text = await metrics.registry.metrics();
      assert.match(text, /^vecron_retention_pruned_total\{kind="executions"\} 1$/m);
      assert.match(text, /^vecron_retention_pruned_total\{kind="files"\} 2$/m);
      assert.match(text, /^vecron_retention_pruned_total\{kind="audit_entries"\} 0$/m);
      const audit = await db.query<{ actor_name: string; details: any }>(`SELECT actor_name, details FROM audit_log WHERE action = 'retention.prune'`);
      assert.equal(audit.rows.length, 1);
      assert.equal(audit.rows[0].actor_name, 'retention');
      assert.equal(audit.rows[0].details.counts.executions, 1);
      assert.equal(audit.rows[0].details.node, 'n1');
      assert.equal(audit.rows[0].details.jobs[0].job_id, job.id);
      // Nothing pruned: no audit entry (an hourly run must not fill the audit log with zeros).
      await runRetention({ ...deps, intervalSeconds: 3600 }, { force: true });
      assert.equal((await db.query(`SELECT 1 FROM audit_log WHERE action = 'retention.prune'`)).rows.length, 1);
    });
  });

  describe(`${kind}: retention API and settings`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(kind, { ...API_ONLY, VECRON_RETENTION_EXECUTIONS_DAYS: '30' });
    });
    after(() => t.close());

    it('GET shows the periods and the jobs with their own; POST /run prunes now and is audited', async () => {
      const job = (await t.api('POST', '/api/v1/jobs', { body: flatJob('keep-a-year', { retention_days: 365 }) })).body;
      assert.equal(job.retention_days, 365);
      const plain = (await t.api('POST', '/api/v1/jobs', { body: flatJob('plain-retention') })).body;
      assert.equal('retention_days' in plain, false);
      const blobs = t.app.blobs;
      const old = (
        await t.app.db.query<{ id: string }>(
          `INSERT INTO executions (job_id, job_version, job_snapshot, status, trigger_type, created_at, finished_at)
           VALUES ($1, 1, '{}', 'succeeded', 'manual', now() - interval '40 days', now() - interval '40 days') RETURNING id`,
          [plain.id],
        )
      ).rows[0].id;
      await blobs.put(`${executionFilesPrefix(plain.id, old)}report.txt`, Buffer.from('x'));
      const s = await t.api('GET', '/api/v1/retention', { token: await t.token('viewer') });
      assert.equal(s.status, 200);
      assert.equal(s.body.executions_days, 30);
      assert.equal(s.body.audit_days, 2557);
      assert.deepEqual(s.body.job_overrides, [{ job_id: job.id, job_name: 'keep-a-year', retention_days: 365 }]);

      assertError(await t.api('POST', '/api/v1/retention/run', { token: await t.token('operator') }), 403, 'forbidden');
      const run = await t.api('POST', '/api/v1/retention/run');
      assert.equal(run.status, 200, JSON.stringify(run.body));
      assert.equal(run.body.counts.executions, 1);
      assert.equal(run.body.counts.files, 1);
      assertError(await t.api('GET', `/api/v1/executions/${old}`), 404, 'not_found');
      assert.deepEqual(await blobs.list(`jobs/${plain.id}/`), []);
      const last = (await t.api('GET', '/api/v1/retention')).body.last_run;
      assert.equal(last.pruned.executions, 1);
      const audit = (await t.api('GET', '/api/v1/audit?resource_type=retention')).body.items.map((e: any) => [e.action, e.actor.name, e.outcome]);
      assert.deepEqual(audit, [
        ['retention.run', 'test-admin', 'success'],
        ['retention.prune', 'test-admin', 'success'],
        ['retention.run', 'test-operator', 'denied'],
      ]);
      assert.match((await t.api('GET', '/metrics', { token: null })).body, /^vecron_retention_pruned_total\{kind="executions"\} 1$/m);
    });

    it("refuses a job's retention_days that is not a whole number of days, with its path", async () => {
      assertError(await t.api('POST', '/api/v1/jobs', { body: flatJob('bad-retention', { retention_days: -1 }) }), 400, 'validation_failed', /retention_days/);
      assertError(await t.api('POST', '/api/v1/jobs', { body: flatJob('bad-retention', { retention_days: 1.5 }) }), 400, 'validation_failed', /retention_days/);
      assertError(
        await t.api('POST', '/api/v1/jobs', { body: flatJob('bad-retention', { retention_days: 40_000 }) }),
        400,
        'validation_failed',
        /retention_days/,
      );
    });
  });
});

describe('retention settings', () => {
  it('default to 90 days of executions and 7 years of audit entries', () => {
    const c = loadConfig({});
    assert.deepEqual([c.retentionExecutionsDays, c.retentionAuditDays, c.retentionIntervalSeconds, c.retentionBatchSize], [90, 2557, 3600, 500]);
  });
  it('refuse an audit period shorter than the executions one (the audit trail must outlive what it speaks of)', () => {
    assert.throws(
      () => loadConfig({ VECRON_RETENTION_EXECUTIONS_DAYS: '400', VECRON_RETENTION_AUDIT_DAYS: '365' }),
      (err: any) => err.code === 'invalid_config' && err.details.problems[0].path === 'VECRON_RETENTION_AUDIT_DAYS',
    );
    assert.throws(() => loadConfig({ VECRON_RETENTION_EXECUTIONS_DAYS: '0', VECRON_RETENTION_AUDIT_DAYS: '365' }), /VECRON_RETENTION_AUDIT_DAYS/);
    assert.equal(loadConfig({ VECRON_RETENTION_EXECUTIONS_DAYS: '0', VECRON_RETENTION_AUDIT_DAYS: '0' }).retentionAuditDays, 0);
  });
});
