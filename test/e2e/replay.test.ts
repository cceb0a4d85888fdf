/**
 * Replay end to end (issue 20): modules run as wasm steps of jobs on a real app (PGlite, the
 * directory blob store, records kept in the blob store here: VECRON_WASM_RECORD_INLINE_BYTES=0),
 * their records fetched through GET /api/v1/executions/{id}/steps/{stepId}/wasm-record, and
 * `wasm-cli replay` run as a user runs it (a child process, --url --token): exit 0 when the run
 * reproduced, 1 when another build diverged (the first divergence printed), 2 when it could not
 * replay (a masked record, recording off, an unknown execution). The Rust plugin's replay runs with
 * its HTTP server and database closed: nothing is sent live.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jspiAvailable } from '../../src/wasm/runtime/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { json, startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import { openSqlServer, type SqlServer } from '../helpers/sql-servers.ts';
import { ROOT, wasmCli } from '../cli/run-cli.ts';
import { CUSTOMERS, CUSTOMER_TIERS } from '../fixtures/customer-tiers.ts';

/** Where http_request and db_query are served: the guest's worker under JSPI (the test runner's node flags), else the bridge. */
const IO_SERVED = jspiAvailable() ? 'worker' : 'host';

const fxPath = (p: string) => join(ROOT, 'fixtures/wasm', p);
const fx = (p: string) => readFileSync(fxPath(p));
const PROBE_CHANGED = fxPath('replay-probe/replay-probe-changed.wasm');

describe('replay of recorded wasm step runs, through the API and wasm-cli replay', () => {
  let t: TestApp;
  let env: Record<string, string>;
  let api: TestServer;
  let sql: SqlServer;

  async function upload(file: Buffer, name: string): Promise<any> {
    const form = new FormData();
    form.set('file', new Blob([file]), `${name}.wasm`);
    form.set('name', name);
    form.set('version', '1.0.0');
    form.set('author', 'tests');
    const res = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
    const body: any = await res.json();
    assert.equal(res.status, 201, JSON.stringify(body));
    return body;
  }
  async function run(doc: Record<string, unknown>): Promise<any> {
    const j = await t.api('POST', '/api/v1/jobs', { body: { max_retries: 0, ...doc } });
    assert.equal(j.status, 201, JSON.stringify(j.body));
    const r = await t.api('POST', `/api/v1/jobs/${j.body.id}/trigger`, { body: {} });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const e = await waitFor(
      async () => {
        const x = await t.api('GET', `/api/v1/executions/${r.body.execution_id}`);
        return ['succeeded', 'failed', 'dead_lettered', 'cancelled'].includes(x.body.status) ? x.body : null;
      },
      'the execution to finish',
      60_000,
    );
    return { job: j.body, execution: e };
  }
  const probeJob = (name: string, config: Record<string, unknown> = {}) => ({
    name,
    steps: [{ id: 'probe', type: 'wasm', config: { module_id: 'replay-probe@1.0.0', function_name: 'probe', input: { hello: 'world' }, ...config } }],
  });

  before(async () => {
    api = await startHttpServer((req, res) => {
      if (req.url === '/customers') return json(res, 200, { data: { customers: CUSTOMERS }, served_at: Date.now() });
      return json(res, 404, {});
    });
    sql = await openSqlServer('pglite');
    await sql.sql(
      'CREATE TABLE customer_analysis (execution_id varchar(64), customer_id varchar(64), name varchar(200), revenue numeric(14,2), tier varchar(16))',
    );
    t = await startTestApp('pglite', { VECRON_WORKER_CONCURRENCY: '2', VECRON_POLL_INTERVAL_MS: '200', VECRON_WASM_RECORD_INLINE_BYTES: '0' });
    env = { VECRON_URL: t.url, VECRON_TOKEN: await t.token('viewer') };
    await upload(fx('replay-probe/replay-probe.wasm'), 'replay-probe');
  });
  after(async () => {
    await t?.close();
    await api?.close().catch(() => {});
    await sql?.close().catch(() => {});
  });

  it('a run of the C probe (time, crypto random and uuid, WASI clocks and random) is recorded and replays: exit 0', async () => {
    const { execution: e } = await run(probeJob('probe-replay'));
    assert.equal(e.status, 'succeeded', JSON.stringify(e));
    const rec = await t.api('GET', `/api/v1/executions/${e.id}/steps/probe/wasm-record`);
    assert.equal(rec.status, 200, JSON.stringify(rec.body));
    assert.equal(rec.body.replayable, true, JSON.stringify(rec.body));
    assert.equal(rec.body.execution_id, e.id);
    assert.deepEqual(
      rec.body.host_calls.map((c: any) => c.function),
      ['time', 'crypto', 'crypto'],
    );
    assert.equal(rec.body.wasi.clocks.length, 2);
    assert.deepEqual(JSON.parse(rec.body.result.output_json), e.steps[0].output);
    // kept in the blob store (the inline bound is 0 here), outside every job's file area
    const row = (await t.app.db.query<any>('SELECT record, blob_key FROM wasm_run_records WHERE execution_id = $1', [e.id])).rows[0];
    assert.equal(row.record, null);
    assert.match(row.blob_key, new RegExp(`^wasm-records/${e.job_id}/${e.id}/`));

    const r = await wasmCli(['replay', e.id], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^reproduced: the same output, fuel and sequence of host calls/);
    const j = await wasmCli(['replay', e.id, '--step', 'probe', '--json'], { env });
    assert.equal(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    assert.equal(out.status, 'reproduced');
    assert.deepEqual(out.replay.output, e.steps[0].output);
    assert.equal(out.replay.fuel_consumed, out.recorded.fuel_consumed);
  });

  it('--module with a changed build diverges at the right call: exit 1, the first divergence printed', async () => {
    const { execution: e } = await run(probeJob('probe-changed'));
    const r = await wasmCli(['replay', e.id, '--module', PROBE_CHANGED], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^diverged at host call #1 \(crypto\): host_call_request/);
    assert.match(r.stdout, /at \$\.n: 16 -> 8/);
    assert.match(r.stdout, /record: \{"op":"random_bytes","n":16\}/);
  });

  it('a secret templated into the input reaches the guest as ***, so its record holds no secret and replays: exit 0', async () => {
    const secret = 'probe-secret-value-1234';
    assert.equal((await t.api('PUT', '/api/v1/variables/probe_secret', { body: { value: secret, secret: true } })).status, 201);
    const { execution: m } = await run(probeJob('probe-masked', { input: { token: '{{variables.probe_secret}}' } }));
    assert.equal(m.status, 'succeeded', JSON.stringify(m));
    const rec = await t.api('GET', `/api/v1/executions/${m.id}/steps/probe/wasm-record`);
    assert.equal(rec.status, 200, JSON.stringify(rec.body));
    assert.ok(!JSON.stringify(rec.body).includes(secret), 'the secret is not in the record');
    assert.equal(JSON.parse(rec.body.input_json).token, '***', rec.body.input_json);
    assert.equal(rec.body.replayable, true, JSON.stringify(rec.body));
    const replayed = await wasmCli(['replay', m.id], { env });
    assert.equal(replayed.code, 0, replayed.stdout + replayed.stderr);
  });

  it('could not replay, exit 2: recording off, an unknown execution, no server', async () => {
    const { execution: off } = await run(probeJob('probe-off', { record: 'off' }));
    assert.equal(off.status, 'succeeded');
    const none = await t.api('GET', `/api/v1/executions/${off.id}/steps/probe/wasm-record`);
    assert.equal(none.status, 404);
    assert.equal(none.body.error.code, 'not_found');
    const offRun = await wasmCli(['replay', off.id], { env });
    assert.equal(offRun.code, 2, offRun.stdout + offRun.stderr);
    assert.match(offRun.stdout, /^could not replay \(record_unavailable\): fetching the run record failed: not_found/);

    const unknown = await wasmCli(['replay', '00000000-0000-4000-8000-000000000000', '--step', 'probe'], { env });
    assert.equal(unknown.code, 2);
    const noArg = await wasmCli(['replay'], { env });
    assert.equal(noArg.code, 2);
    assert.match(noArg.stdout, /which run\?/);
    const noServer = await wasmCli(['replay', off.id, '--step', 'probe', '--url', 'http://127.0.0.1:9'], { env });
    assert.equal(noServer.code, 2);
    assert.match(noServer.stdout, /cannot reach/);
  });

  it("a module's record_mode 'failed' keeps only failed runs; a bad mode is a 400 naming the field", async () => {
    const mod = await upload(fx('trap/trap.wasm'), 'trap-module');
    const set = await t.api('PUT', `/api/v1/wasm/modules/${mod.id}/record-mode`, { body: { record_mode: 'failed' } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const bad = await t.api('PUT', `/api/v1/wasm/modules/${mod.id}/record-mode`, { body: { record_mode: 'sometimes' } });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /record_mode/);
    const fn = (await t.api('GET', `/api/v1/wasm/modules/${mod.id}`)).body.entries[0].name;
    const { execution: e } = await run({
      name: 'trap-failed',
      steps: [{ id: 'trap', type: 'wasm', config: { module_id: 'trap-module@1.0.0', function_name: fn, input: {} } }],
    });
    assert.ok(['failed', 'dead_lettered'].includes(e.status), e.status);
    const rec = await t.api('GET', `/api/v1/executions/${e.id}/steps/trap/wasm-record`);
    assert.equal(rec.status, 200, JSON.stringify(rec.body));
    assert.equal(rec.body.result.ok, false);
    const r = await wasmCli(['replay', e.id], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // the probe with its module set to 'failed': a successful run keeps nothing
    const probe = (await t.api('GET', '/api/v1/wasm/modules/replay-probe@1.0.0')).body;
    await t.api('PUT', `/api/v1/wasm/modules/${probe.id}/record-mode`, { body: { record_mode: 'failed' } });
    const { execution: ok } = await run(probeJob('probe-failed-only'));
    assert.equal(ok.status, 'succeeded');
    assert.equal((await t.api('GET', `/api/v1/executions/${ok.id}/steps/probe/wasm-record`)).status, 404);
    await t.api('PUT', `/api/v1/wasm/modules/${probe.id}/record-mode`, { body: { record_mode: null } });
  });

  it('the Rust plugin (http_request + db_query) replays with its HTTP server and database closed; the last records of the step are listed', async () => {
    const mod = await upload(fx('customer-analysis-plugin/customer-analysis-plugin.wasm'), 'customer-analysis-plugin');
    assert.equal((await t.api('PUT', '/api/v1/variables/analytics_db', { body: { value: sql.url, secret: true } })).status, 201);
    const grant = await t.api('PUT', `/api/v1/wasm/modules/${mod.id}/permissions`, {
      body: {
        permissions: [
          { type: 'http:read', resource_pattern: `${api.url}/customers` },
          { type: 'database:write', resource_pattern: 'analytics_db/customer_analysis' },
        ],
      },
    });
    assert.equal(grant.status, 200, JSON.stringify(grant.body));
    const { job, execution: e } = await run({
      name: 'plugin-replay',
      steps: [
        {
          id: 'analyse',
          type: 'wasm',
          config: {
            module_id: 'customer-analysis-plugin@1.0.0',
            function_name: 'analyse_customers',
            fuel_limit: 20_000_000,
            input: { customers_url: `${api.url}/customers`, datasource: 'analytics_db', execution_id: '{{execution.id}}' },
          },
        },
      ],
    });
    assert.equal(e.status, 'succeeded', JSON.stringify(e));
    assert.deepEqual(e.steps[0].output.customers, CUSTOMER_TIERS.customers);
    const list = await t.api('GET', `/api/v1/jobs/${job.id}/steps/analyse/wasm-records?limit=5`);
    assert.equal(list.status, 200);
    assert.equal(list.body.items.length, 1);
    assert.deepEqual(
      list.body.items[0].host_calls.map((c: any) => [c.function, c.served]),
      [
        ['http_request', IO_SERVED],
        ['db_query', IO_SERVED],
      ],
    );
    assert.ok(!JSON.stringify(list.body).includes(sql.url), 'the DSN is not in the record');
    const seen = api.seen.length;
    await api.close();
    await sql.close();
    const r = await wasmCli(['replay', e.id], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^reproduced: .*2 host calls from the record/);
    assert.equal(api.seen.length, seen);
  });
});
