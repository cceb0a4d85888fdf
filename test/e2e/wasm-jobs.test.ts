/**
 * WASM steps inside jobs, end to end through the HTTP API: the three examples in examples/ (with
 * their modules uploaded to the registry) run on a manual trigger and on a schedule, against a
 * real HTTP server on loopback and a real PostgreSQL-protocol database; routing, validation
 * failures, module errors with retries, set_context, and the execution logs API.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { forEachDatabase, type DbKind } from '../helpers/db.ts';
import { json, startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import { openSqlServer, type SqlServer } from '../helpers/sql-servers.ts';
import { CUSTOMERS, CUSTOMER_TIERS as TIERS } from '../fixtures/customer-tiers.ts';

const root = new URL('../../', import.meta.url);
const fixture = (p: string) => readFileSync(new URL(`fixtures/wasm/${p}`, root));
const example = (name: string) => JSON.parse(readFileSync(new URL(`examples/${name}/job.json`, root), 'utf8'));

const VALID_ORDER = { id: 'o-1', amount: 120.5, customer: { email: 'an@example.vn' }, items: [{ sku: 'A', qty: 1 }] };
const INVALID_ORDER = { id: 'o-2', amount: 0, customer: { email: 'bad-email' }, items: Array.from({ length: 51 }, (_, i) => ({ sku: `S${i}` })) };

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: WASM steps in jobs, end to end`, () => {
    let t: TestApp;
    let api: TestServer;
    let sql: SqlServer;
    let order: unknown = VALID_ORDER;
    const stock: Record<string, number> = { 'SKU-LOW': 42, 'SKU-OK': 500 };
    const modules: Record<string, any> = {};

    async function upload(file: Buffer, name: string, version = '1.0.0') {
      const form = new FormData();
      form.set('file', new Blob([file]), `${name}.wasm`);
      form.set('name', name);
      form.set('version', version);
      form.set('author', 'examples');
      const res = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
      const body: any = await res.json();
      assert.equal(res.status, 201, JSON.stringify(body));
      modules[name] = body;
      return body;
    }
    async function createJob(doc: unknown): Promise<any> {
      const r = await t.api('POST', '/api/v1/jobs', { body: doc });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    }
    async function finished(executionId: string, timeoutMs = 30000): Promise<any> {
      return waitFor(
        async () => {
          const r = await t.api('GET', `/api/v1/executions/${executionId}`);
          return ['succeeded', 'failed', 'dead_lettered', 'cancelled'].includes(r.body.status) ? r.body : null;
        },
        `execution ${executionId} to finish`,
        timeoutMs,
      );
    }
    async function trigger(jobId: string): Promise<any> {
      const r = await t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: {} });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      return finished(r.body.execution_id);
    }
    const step = (e: any, id: string) => e.steps.find((s: any) => s.id === id);
    /** Lets the job fire every second, waits for one scheduled execution to finish, switches the schedule off. */
    async function onSchedule(job: any): Promise<any> {
      const { id, version, created_at, updated_at, created_by, updated_by, ...doc } = job;
      const upd = await t.api('PUT', `/api/v1/jobs/${id}`, {
        body: { ...doc, schedule: { type: 'cron', expression: '* * * * * ?', timezone: 'Asia/Ho_Chi_Minh' } },
      });
      assert.equal(upd.status, 200, JSON.stringify(upd.body));
      const exec = await waitFor(async () => {
        const r = await t.api('GET', `/api/v1/executions?job_id=${id}&limit=50`);
        return r.body.items.find((e: any) => e.trigger_type === 'schedule');
      }, `a scheduled execution of ${job.name}`);
      await t.api('POST', `/api/v1/jobs/${id}/disable`);
      return finished(exec.id);
    }
    async function logs(executionId: string, query = ''): Promise<any[]> {
      const r = await t.api('GET', `/api/v1/wasm/executions/${executionId}/logs${query}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.logs;
    }

    before(async () => {
      api = await startHttpServer((req, res) => {
        const inv = /^\/inventory\/([^/]+)$/.exec(req.url);
        if (req.method === 'GET' && req.url === '/customers') return json(res, 200, { data: { customers: CUSTOMERS } });
        if (req.method === 'GET' && inv) return json(res, 200, { data: { sku: inv[1], stock_level: stock[inv[1]] } });
        if (req.method === 'GET' && req.url === '/orders/next') return json(res, 200, order);
        if (req.method === 'POST' && (req.url === '/alerts' || req.url === '/shipments')) return json(res, 201, { ok: true });
        if (req.method === 'POST') return json(res, 200, { ok: true });
        return json(res, 404, { error: 'no such thing' });
      });
      sql = await openSqlServer('pglite');
      await sql.sql('CREATE TABLE customer_analysis (execution_id text, customer_id text, name text, revenue numeric, tier text)');
      t = await startTestApp(kind, { VECRON_WORKER_CONCURRENCY: '4', VECRON_POLL_INTERVAL_MS: '200' });
      for (const [name, value, secret] of [
        ['API_BASE', api.url, false],
        ['analytics_db', sql.url, true],
      ] as const) {
        const r = await t.api('PUT', `/api/v1/variables/${name}`, { body: { value, secret } });
        assert.ok(r.status === 201 || r.status === 200, JSON.stringify(r.body));
      }
    });
    after(async () => {
      await t?.close();
      await api?.close();
      await sql?.close();
    });

    it('refuses a job naming a missing module or function when it is created or updated', async () => {
      const doc = example('customer-analysis');
      const missing = await t.api('POST', '/api/v1/jobs', { body: { ...doc, name: `missing-${kind}` } });
      assert.equal(missing.status, 400);
      assert.match(missing.body.error.message, /steps\[1\]\.config\.module_id: no module 'customer-tiers@1\.0\.0' in the registry/);
      await upload(fixture('customer-tiers/customer-tiers.wasm'), 'customer-tiers');
      const wrongFn = structuredClone(doc);
      wrongFn.name = `wrong-fn-${kind}`;
      wrongFn.steps[1].config.function_name = 'transform';
      const bad = await t.api('POST', '/api/v1/jobs', { body: wrongFn });
      assert.equal(bad.status, 400);
      assert.match(
        bad.body.error.message,
        /steps\[1\]\.config\.function_name: module customer-tiers@1\.0\.0 has no function 'transform' \(entries: transform_data\)/,
      );
      const ok = await createJob({ ...doc, name: `fn-check-${kind}` });
      const upd = await t.api('PUT', `/api/v1/jobs/${ok.id}`, {
        body: { ...doc, name: ok.name, steps: [doc.steps[0], { ...doc.steps[1], config: { ...doc.steps[1].config, module_id: 'customer-tiers@2.0.0' } }] },
      });
      assert.equal(upd.status, 400);
      assert.match(upd.body.error.message, /no module 'customer-tiers@2\.0\.0'/);
      await t.api('DELETE', `/api/v1/jobs/${ok.id}`);
    });

    it('customer analysis (Rust): HTTP fetch -> WASM transform -> database insert, on a manual trigger and on a schedule', async () => {
      if (!modules['customer-tiers']) await upload(fixture('customer-tiers/customer-tiers.wasm'), 'customer-tiers');
      const job = await createJob(example('customer-analysis'));
      const e = await trigger(job.id);
      assert.equal(e.status, 'succeeded', JSON.stringify(e.error ?? e.steps));
      assert.deepEqual(step(e, 'transform').output, TIERS);
      assert.equal(step(e, 'save_to_db').output.affected_rows, 4);
      const rows = await sql.sql('SELECT customer_id, tier, revenue::float AS revenue FROM customer_analysis WHERE execution_id = $1 ORDER BY customer_id', [
        e.id,
      ]);
      assert.deepEqual(
        rows,
        TIERS.customers.map((c) => ({ customer_id: c.id, tier: c.tier, revenue: c.revenue })),
      );

      const [log] = await logs(e.id);
      assert.equal(log.step_id, 'transform');
      assert.equal(log.module_id, modules['customer-tiers'].id);
      assert.equal(log.module_name, 'customer-tiers');
      assert.ok(log.fuel_consumed > 1000, `fuel ${log.fuel_consumed}`);
      assert.ok(log.memory_used_bytes >= 65536, `memory ${log.memory_used_bytes}`);
      assert.ok(log.duration_ms > 0);
      assert.equal(log.error, null);

      const scheduled = await onSchedule(job);
      assert.equal(scheduled.status, 'succeeded', JSON.stringify(scheduled.error));
      assert.equal(scheduled.trigger_type, 'schedule');
      assert.deepEqual(step(scheduled, 'transform').output, TIERS);
      assert.equal((await sql.sql('SELECT count(*)::int AS n FROM customer_analysis WHERE execution_id = $1', [scheduled.id]))[0].n, 4);
      const details = await t.api('GET', `/api/v1/wasm/modules/${modules['customer-tiers'].id}`);
      assert.ok(details.body.stats.runs >= 2);
      assert.equal(details.body.stats.failures, 0);
      assert.ok(details.body.stats.avg_fuel_consumed > 1000);
    });

    it('low-stock routing (AssemblyScript): the module routes to the alert or to the normal flow; the other branch is skipped', async () => {
      await upload(fixture('low-stock/low-stock.wasm'), 'low-stock');
      const job = await createJob(example('low-stock-routing'));
      const setSku = (sku: string) => t.api('PUT', `/api/v1/jobs/${job.id}/variables/SKU`, { body: { value: sku } });

      await setSku('SKU-LOW');
      const low = await trigger(job.id);
      assert.equal(low.status, 'succeeded', JSON.stringify(low.error));
      assert.deepEqual(step(low, 'route').output, { next_step: 'send_low_stock_alert', priority: 'high', message: 'Stock level 42 below threshold 100' });
      assert.deepEqual(
        low.steps.map((s: any) => [s.id, s.status]),
        [
          ['check_inventory', 'succeeded'],
          ['route', 'succeeded'],
          ['send_low_stock_alert', 'succeeded'],
          ['continue_normal_flow', 'skipped'],
        ],
      );
      const alert = api.seen.filter((r) => r.url === '/alerts').at(-1)!;
      assert.deepEqual(JSON.parse(alert.body), { sku: 'SKU-LOW', priority: 'high', message: 'Stock level 42 below threshold 100' });

      await setSku('SKU-OK');
      const alertsBefore = api.seen.filter((r) => r.url === '/alerts').length;
      const ok = await onSchedule(job);
      assert.equal(ok.status, 'succeeded', JSON.stringify(ok.error));
      assert.deepEqual(step(ok, 'route').output, { next_step: 'continue_normal_flow', priority: 'normal' });
      assert.equal(step(ok, 'send_low_stock_alert').status, 'skipped');
      assert.equal(step(ok, 'continue_normal_flow').status, 'succeeded');
      assert.equal(api.seen.filter((r) => r.url === '/alerts').length, alertsBefore);
      assert.ok(api.seen.some((r) => r.url === '/replenishment/SKU-OK/ok'));
    });

    it('order validation (Go, WASI command): a valid order ships; an invalid one fails the job with the errors and is not retried', async () => {
      await upload(fixture('order-validation/order-validation.wasm'), 'order-validation');
      const job = await createJob(example('order-validation'));
      order = VALID_ORDER;
      const good = await trigger(job.id);
      assert.equal(good.status, 'succeeded', JSON.stringify(good.error));
      assert.deepEqual(step(good, 'validate').output, { valid: true, errors: [] });
      assert.equal(step(good, 'create_shipment').output.status, 201);

      order = INVALID_ORDER;
      const bad = await onSchedule(job);
      assert.equal(bad.status, 'failed');
      assert.equal(bad.attempt, 1, 'a validation failure is not retried');
      assert.equal(bad.error.code, 'validation_failed');
      assert.match(bad.error.message, /Order amount must be positive; Invalid customer email; Order cannot have more than 50 items/);
      assert.deepEqual(step(bad, 'validate').error.details.errors, [
        'Order amount must be positive',
        'Invalid customer email',
        'Order cannot have more than 50 items',
      ]);
      assert.equal(step(bad, 'create_shipment').status, 'skipped', 'steps after a failure are skipped, not left pending');
      assert.equal(step(bad, 'create_shipment').reason, 'an earlier step failed');
      const [log] = await logs(bad.id);
      assert.equal(log.error.code, 'validation_failed');
      assert.ok(log.fuel_consumed > 1_000_000, `a Go module's run costs millions of fuel: ${log.fuel_consumed}`);
    });

    it('a module error fails the step with its code, is retried like any step, and every run is logged', async () => {
      const m = await upload(fixture('compute-kernel/compute-kernel.wasm'), 'kernel');
      const job = await createJob({
        name: `kernel-${kind}`,
        max_retries: 1,
        retry_backoff_seconds: 1,
        steps: [{ id: 'crunch', type: 'wasm', config: { module_id: 'kernel@latest', function_name: 'run', fuel_limit: 5000, input: { n: 30 } } }],
      });
      const e = await trigger(job.id);
      assert.equal(e.status, 'dead_lettered');
      assert.equal(e.attempt, 2);
      assert.equal(e.error.code, 'fuel_exhausted');
      assert.match(step(e, 'crunch').error.message, /fuel/);
      const runs = await logs(e.id, `?module_id=${m.id}`);
      assert.deepEqual(
        runs.map((l) => [l.attempt, l.error.code]),
        [
          [1, 'fuel_exhausted'],
          [2, 'fuel_exhausted'],
        ],
      );
      assert.ok(runs.every((l) => l.fuel_consumed >= 5000));
      assert.deepEqual(await logs(e.id, `?module_id=${modules['customer-tiers'].id}`), []);
      const byModule = await t.api('GET', `/api/v1/wasm/modules/${m.id}/logs`);
      assert.equal(byModule.body.total, 2);
      assert.equal((await t.api('GET', `/api/v1/wasm/modules/${m.id}`)).body.stats.failures, 2);
    });

    it('set_context values reach later steps and the execution record', async () => {
      await upload(fixture('sum-amounts/sum-amounts.wasm'), 'sum-amounts');
      const job = await createJob({
        name: `sum-${kind}`,
        steps: [
          {
            id: 'sum',
            type: 'wasm',
            config: { module_id: 'sum-amounts', function_name: 'sum_amounts', input: { steps: { fetch_amounts: { output: { amounts: [10, 20.5, -0.5] } } } } },
          },
          {
            id: 'report',
            type: 'http',
            config: { method: 'POST', url: '${API_BASE}/report', body: { total: '{{last_total}}', count: '{{steps.sum.output.count}}' } },
          },
        ],
      });
      const e = await trigger(job.id);
      assert.equal(e.status, 'succeeded', JSON.stringify(e.error));
      assert.deepEqual(step(e, 'sum').output, { total: 30, count: 3 });
      assert.deepEqual(JSON.parse(api.seen.filter((r) => r.url === '/report').at(-1)!.body), { total: 30, count: 3 });
      assert.deepEqual(e.context.set_context, { last_total: 30 });
    });

    it("get_context with a bare key reads the job's variables (after this execution's set_context values), as wasm-cli test does", async () => {
      await upload(fixture('sum-amounts/sum-amounts.wasm'), 'sum-vars');
      const amounts = { steps: { fetch_amounts: { output: { amounts: [1, 2] } }, other: { output: { amounts: [5, 6, 7] } } } };
      const job = await createJob({
        name: `vars-${kind}`,
        variables: { source_step: 'other' },
        steps: [{ id: 'sum', type: 'wasm', config: { module_id: 'sum-vars', function_name: 'sum_amounts', input: amounts } }],
      });
      const e = await trigger(job.id);
      assert.equal(e.status, 'succeeded', JSON.stringify(e.error));
      // the module read get_context("source_step"): the job variable, not a path into the context
      assert.deepEqual(step(e, 'sum').output, { total: 18, count: 3 });
    });

    it("the step's table_limit clamps the module's tables: below its declared tables the step fails with memory_limit", async () => {
      await upload(fixture('sandbox-holes/tables.wasm'), 'tables');
      const run = async (name: string, table_limit?: number) =>
        trigger(
          (
            await createJob({
              name,
              max_retries: 0,
              steps: [{ id: 't', type: 'wasm', config: { module_id: 'tables', function_name: 'ok', ...(table_limit === undefined ? {} : { table_limit }) } }],
            })
          ).id,
        );
      const ok = await run(`tables-default-${kind}`);
      assert.equal(ok.status, 'succeeded', JSON.stringify(ok.error));
      assert.deepEqual(step(ok, 't').output, { ok: true });
      const small = await run(`tables-small-${kind}`, 1000);
      assert.ok(['failed', 'dead_lettered'].includes(small.status), JSON.stringify(small));
      assert.equal(small.error.code, 'memory_limit');
      assert.match(step(small, 't').error.message, /100000 initial entries.*table limit of 1000/);
    });

    it('routing to an unknown step fails naming it; a routing loop is stopped by the bound on step runs', async () => {
      await upload(fixture('echo/echo.wasm'), 'echo');
      const unknown = await createJob({
        name: `route-unknown-${kind}`,
        max_retries: 0,
        steps: [
          { id: 'decide', type: 'wasm', config: { module_id: 'echo', function_name: 'echo', input: { next_steps: ['notify', 'nowhere'] } } },
          { id: 'notify', type: 'http', config: { url: '${API_BASE}/customers' } },
        ],
      });
      const e = await trigger(unknown.id);
      assert.equal(e.status, 'failed');
      assert.equal(e.error.code, 'routing_error');
      assert.match(e.error.message, /step 'decide' routed to 'nowhere', which is not a step of this job \(steps: decide, notify\)/);

      const loop = await createJob({
        name: `route-loop-${kind}`,
        max_retries: 0,
        steps: [
          { id: 'ping', type: 'wasm', config: { module_id: 'echo', function_name: 'echo', input: { next_step: 'pong' } } },
          { id: 'pong', type: 'wasm', config: { module_id: 'echo', function_name: 'echo', input: { next_step: 'ping' } } },
        ],
      });
      const l = await trigger(loop.id);
      assert.equal(l.status, 'failed');
      assert.equal(l.error.code, 'routing_error');
      assert.match(l.error.message, /more than 100 step runs in one attempt: the routing loops/);

      const end = await createJob({
        name: `route-end-${kind}`,
        steps: [
          { id: 'decide', type: 'wasm', config: { module_id: 'echo', function_name: 'echo', input: { next_steps: [] } } },
          { id: 'never', type: 'http', config: { url: '${API_BASE}/customers' } },
        ],
      });
      const done = await trigger(end.id);
      assert.equal(done.status, 'succeeded');
      assert.equal(step(done, 'never').status, 'skipped');
    });

    it('a module whose stored bytes were altered after upload is refused at run time, with an audit alert', async () => {
      const m = await upload(fixture('echo/echo.wasm'), 'tampered');
      const job = await createJob({
        name: `tampered-${kind}`,
        max_retries: 2,
        steps: [{ id: 'run', type: 'wasm', config: { module_id: 'tampered@1.0.0', function_name: 'echo', input: { a: 1 } } }],
      });
      const good = await trigger(job.id);
      assert.equal(good.status, 'succeeded');
      const evil = Buffer.from(fixture('echo/echo.wasm'));
      evil[evil.length - 3] ^= 0x55;
      await t.app.blobs.put(m.minio_path, evil);
      const e = await trigger(job.id);
      assert.equal(e.status, 'failed');
      assert.equal(e.attempt, 1, 'an integrity failure is not retried');
      assert.equal(e.error.code, 'integrity_check_failed');
      assert.match(e.error.message, /failed its integrity check/);
      const audit = await t.api('GET', `/api/v1/audit?action=wasm.module.integrity_failure&resource_id=${m.id}`);
      assert.equal(audit.body.items.length, 1);
      assert.equal(audit.body.items[0].outcome, 'alert');
      assert.equal(audit.body.items[0].details.execution_id, e.id);
    });
  });
});
