/**
 * The shadow test of issue 20 on the customer-tiers example (examples/customer-analysis: an http
 * fetch of the customers, then the customer-tiers module): 50 real recorded runs, each with its own
 * customers, replayed with a build whose gold tier starts above 40,000 instead of 50,000
 * (fixtures/wasm/customer-tiers/customer-tiers-gold-40000.wasm, built from the same source).
 * The report names exactly the runs that have a customer in (40000, 50000], with the JSON diff of
 * each, through the API (POST /api/v1/wasm/modules/{id}/shadow) and through
 * `wasm-cli replay --job --step --module --last`. Also: the request's bounds (count, job, step,
 * module: a 4xx with the path of the problem) and the time budget (a version that never answers
 * cannot hold the server: the report comes back with the runs not reached).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { json, startHttpServer, type TestServer } from '../helpers/http-server.ts';
import { wasmCli } from '../cli/run-cli.ts';
import { assemble, I, T } from '../../src/wasm/binary/assemble.ts';
import { createJob, customersOf, expectedDiff, fixture, fixturePath, runAll, upload } from './shadow-support.ts';

const RUNS = 50;
const TIERS = fixture('customer-tiers/customer-tiers.wasm');
const TIERS_40K = fixture('customer-tiers/customer-tiers-gold-40000.wasm');

/** transform_data that never returns (a loop without end): only the time budget stops it. */
const NEVER_ANSWERS = Buffer.from(
  assemble({
    types: [
      { params: [T.i32], results: [T.i32] },
      { params: [T.i32, T.i32], results: [T.i64] },
    ],
    funcs: [
      { type: 0, body: [...I.i32(1024)] },
      { type: 1, body: [0x03, 0x40, ...I.br(0), 0x0b, 0x00] },
    ],
    memories: [{ min: 1 }],
    exports: [
      { name: 'memory', kind: 2, index: 0 },
      { name: 'alloc', kind: 0, index: 0 },
      { name: 'transform_data', kind: 0, index: 1 },
    ],
  }),
);

describe('shadow test: customer-tiers, 50 recorded runs, the gold threshold moved to 40,000', () => {
  let t: TestApp;
  let api: TestServer;
  let job: any;
  /** execution id -> run number */
  const runOf = new Map<string, number>();
  let changed: Set<string>;
  let dir: string;

  before(async () => {
    api = await startHttpServer((req, res) => {
      const run = Number(new URL(req.url, 'http://x').searchParams.get('run'));
      json(res, 200, { data: { customers: customersOf(run) } });
    });
    t = await startTestApp('pglite', { VECRON_WORKER_CONCURRENCY: '4', VECRON_POLL_INTERVAL_MS: '100', VECRON_WASM_SHADOW_TIMEOUT_SECONDS: '120' });
    await upload(t, TIERS, 'customer-tiers', '1.0.0');
    await upload(t, TIERS_40K, 'customer-tiers', '1.1.0');
    await upload(t, NEVER_ANSWERS, 'customer-tiers', '9.9.9-never');
    job = await createJob(t, {
      name: 'customer-analysis',
      max_retries: 0,
      steps: [
        { id: 'fetch_customers', type: 'http', config: { method: 'GET', url: `${api.url}/customers?run={{trigger.payload.run}}`, timeout_seconds: 10 } },
        {
          id: 'transform',
          type: 'wasm',
          config: {
            module_id: 'customer-tiers@1.0.0',
            function_name: 'transform_data',
            fuel_limit: 5_000_000,
            timeout_seconds: 10,
            input: { steps: { fetch_customers: { output: '{{steps.fetch_customers.output.body}}' } } },
          },
        },
      ],
    });
    const ids = await runAll(
      t,
      job.id,
      Array.from({ length: RUNS }, (_, i) => ({ run: i })),
    );
    ids.forEach((id, i) => runOf.set(id, i));
    changed = new Set(ids.filter((_, i) => expectedDiff(i).length > 0));
    assert.equal(changed.size, 22, 'runs 0, 3, ..., 48 and 7, 14, 28, 35, 49 have a customer whose tier moves');
    dir = mkdtempSync(join(tmpdir(), 'vecron-shadow-'));
  });
  after(async () => {
    await t?.close();
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The report names exactly the changed runs, each with its diff; every other run is the same. */
  function assertReport(report: any): void {
    assert.equal(report.totals.runs, RUNS);
    assert.equal(report.runs.length, RUNS);
    const differ = new Set<string>(report.runs.filter((r: any) => r.outcome === 'different_output').map((r: any) => r.execution_id));
    assert.deepEqual([...differ].sort(), [...changed].sort(), 'exactly the runs with a customer in (40000, 50000]');
    for (const r of report.runs) {
      const i = runOf.get(r.execution_id);
      assert.ok(i !== undefined, `a run of this job: ${r.execution_id}`);
      if (changed.has(r.execution_id)) assert.deepEqual(r.diff, expectedDiff(i), `the diff of run ${i}`);
      else assert.equal(r.outcome, 'same_output', `run ${i}: ${JSON.stringify(r)}`);
      assert.ok(r.fuel.recorded > 0 && r.fuel.replay > 0, 'fuel recorded and replayed');
      assert.equal(r.fuel.change, r.fuel.replay - r.fuel.recorded);
      assert.ok(r.duration_ms.replay >= 0);
    }
    assert.deepEqual(
      {
        same: report.totals.same_output,
        different: report.totals.different_output,
        error: report.totals.new_error,
        diverged: report.totals.diverged,
        not: report.totals.not_replayable,
      },
      { same: RUNS - 22, different: 22, error: 0, diverged: 0, not: 0 },
    );
    assert.equal(
      report.totals.fuel.recorded,
      report.runs.reduce((s: number, r: any) => s + r.fuel.recorded, 0),
    );
    assert.equal(report.incomplete, undefined);
  }

  it('API: POST /wasm/modules/customer-tiers@1.1.0/shadow reports exactly the runs the threshold changes, with their diffs', async () => {
    const r = await t.api('POST', '/api/v1/wasm/modules/customer-tiers@1.1.0/shadow', { body: { job_id: job.id, step_id: 'transform', count: RUNS } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.module.version, '1.1.0');
    assert.equal(r.body.step_id, 'transform');
    assertReport(r.body);
    for (const run of r.body.runs) assert.equal(run.recorded_module.version, '1.0.0');
    // The job's name works as well; the version that made the runs replays them all the same, at the same fuel.
    const same = await t.api('POST', '/api/v1/wasm/modules/customer-tiers@1.0.0/shadow', {
      body: { job_id: 'customer-analysis', step_id: 'transform', count: 10 },
    });
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.totals.runs, 10);
    assert.equal(same.body.totals.same_output, 10);
    assert.equal(same.body.totals.fuel.change, 0);
  });

  it('wasm-cli replay --job --step --module --last 50: the same report, exit code 1; the recorded build: exit code 0', async () => {
    const file = join(dir, 'customer-tiers-gold-40000.wasm');
    writeFileSync(file, TIERS_40K);
    const server = ['--url', t.url, '--token', t.adminToken];
    const j = await wasmCli(['replay', '--job', job.id, '--step', 'transform', '--module', file, '--last', String(RUNS), '--json', ...server]);
    assert.equal(j.code, 1, j.stderr);
    assertReport(JSON.parse(j.stdout));

    const text = await wasmCli([
      'replay',
      '--job',
      'customer-analysis',
      '--step',
      'transform',
      '--module',
      fixturePath('customer-tiers/customer-tiers-gold-40000.wasm'),
      '--last',
      String(RUNS),
      ...server,
    ]);
    assert.equal(text.code, 1, text.stderr);
    assert.match(text.stdout, /^total: 50 run\(s\): 28 same output, 22 different output, 0 new error, 0 diverged, 0 not replayable$/m);
    assert.match(text.stdout, /DIFFERENT OUTPUT/);
    assert.match(text.stdout, /\$\.customers\[4\]\.tier: expected "silver", got "gold"/);
    assert.match(text.stderr, /replaying \[#+\] 50\/50/, 'progress on stderr');

    const same = await wasmCli([
      'replay',
      '--job',
      job.id,
      '--step',
      'transform',
      '--module',
      fixturePath('customer-tiers/customer-tiers.wasm'),
      '--last',
      '5',
      ...server,
    ]);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /^total: 5 run\(s\): 5 same output, 0 different output/m);
  });

  it('bad requests: 4xx with the path of the problem, never a 5xx', async () => {
    const post = (ref: string, body: unknown) => t.api('POST', `/api/v1/wasm/modules/${ref}/shadow`, { body });
    const problemPath = (r: any) => r.body.error.details?.problems?.[0]?.path;
    let r = await post('customer-tiers@1.1.0', { job_id: job.id, step_id: 'transform', count: 0 });
    assert.equal(r.status, 400);
    assert.equal(problemPath(r), 'count');
    r = await post('customer-tiers@1.1.0', { job_id: job.id, step_id: 'transform', count: 201 });
    assert.equal(r.status, 400, 'above VECRON_WASM_SHADOW_MAX_RUNS (200)');
    assert.equal(problemPath(r), 'count');
    r = await post('customer-tiers@1.1.0', { job_id: 'no-such-job', step_id: 'transform' });
    assert.equal(r.status, 400);
    assert.equal(problemPath(r), 'job_id');
    r = await post('customer-tiers@1.1.0', { job_id: job.id, step_id: 'fetch_customers' });
    assert.equal(r.status, 400);
    assert.equal(problemPath(r), 'step_id');
    assert.match(r.body.error.message, /is a http step, not a wasm step/);
    r = await post('customer-tiers@1.1.0', { job_id: job.id, step_id: 'nope' });
    assert.equal(problemPath(r), 'step_id');
    r = await post('customer-tiers@1.1.0', { job_id: job.id });
    assert.equal(r.status, 400);
    assert.match(r.body.error.details.problems[0].message, /missing required property 'step_id'/);
    r = await post('customer-tiers@1.1.0', { job_id: job.id, step_id: 'transform', extra: 1 });
    assert.equal(problemPath(r), 'extra');
    r = await post('customer-tiers@7.0.0', { job_id: job.id, step_id: 'transform' });
    assert.equal(r.status, 404);
    const viewer = await t.token('viewer');
    r = await t.api('POST', '/api/v1/wasm/modules/customer-tiers@1.1.0/shadow', { body: { job_id: job.id, step_id: 'transform' }, token: viewer });
    assert.equal(r.status, 403, 'a shadow test takes the pool: operators only');
  });
});

describe('shadow test: the time budget', () => {
  let t: TestApp;
  let api: TestServer;
  let job: any;

  before(async () => {
    api = await startHttpServer((_req, res) => json(res, 200, { data: { customers: customersOf(1) } }));
    t = await startTestApp('pglite', { VECRON_POLL_INTERVAL_MS: '100', VECRON_WASM_SHADOW_TIMEOUT_SECONDS: '1' });
    await upload(t, TIERS, 'customer-tiers', '1.0.0');
    await upload(t, NEVER_ANSWERS, 'customer-tiers', '2.0.0');
    job = await createJob(t, {
      name: 'tiers',
      max_retries: 0,
      steps: [
        { id: 'fetch_customers', type: 'http', config: { url: `${api.url}/customers` } },
        {
          id: 'transform',
          type: 'wasm',
          config: {
            module_id: 'customer-tiers@1.0.0',
            function_name: 'transform_data',
            fuel_limit: 1e12,
            timeout_seconds: 600,
            input: { steps: { fetch_customers: { output: '{{steps.fetch_customers.output.body}}' } } },
          },
        },
      ],
    });
    await runAll(t, job.id, [{}, {}, {}]);
  });
  after(async () => {
    await t?.close();
    await api?.close();
  });

  it('a version that never answers is stopped by VECRON_WASM_SHADOW_TIMEOUT_SECONDS: the report comes back, the runs not reached are not_run', async () => {
    const r = await t.api('POST', '/api/v1/wasm/modules/customer-tiers@2.0.0/shadow', { body: { job_id: job.id, step_id: 'transform', count: 3 } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.totals.runs, 3);
    assert.equal(r.body.totals.not_run, 3, JSON.stringify(r.body.runs));
    assert.deepEqual(r.body.incomplete, { reason: 'time_budget', not_run: 3, budget_ms: 1000 });
    for (const run of r.body.runs) assert.equal(run.reason, 'not_run');
    // The pool is free again: the recorded version replays at once.
    const ok = await t.api('POST', '/api/v1/wasm/modules/customer-tiers@1.0.0/shadow', { body: { job_id: job.id, step_id: 'transform', count: 3 } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.totals.same_output, 3);
  });
});
