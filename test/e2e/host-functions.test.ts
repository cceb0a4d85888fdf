/**
 * The privileged host functions end to end (issue 15), through the real engine and the HTTP API:
 * guest modules built from source (fixtures/wasm/customer-analysis-plugin in Rust,
 * fixtures/wasm/signed-report in C) run as wasm steps of jobs, against a real HTTP server on
 * loopback, real SQL datasources (PGlite behind its wire server; PostgreSQL and MariaDB when
 * TEST_DATABASE_URL / TEST_MYSQL_URL are set) and both blob stores (directory, S3 via TEST_S3_*).
 *
 * - granted exactly what it needs, the plugin fetches, classifies, inserts and routes;
 * - with one permission removed, the guest gets `permission_denied` as an answer and reports it
 *   (the step fails with `validation_failed`, not a trap), an audit row exists, the metric moved;
 * - an egress refusal makes no connection (a listener the policy denies sees nothing);
 * - a call that outlives the step's timeout ends the run within timeout + 1 s and aborts its I/O;
 * - the host-call record comes back from GET /api/v1/wasm/executions/{id}/logs, secrets masked.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { jspiAvailable } from '../../src/wasm/runtime/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { json, startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import { forEachSqlServer, openSqlServer, type SqlKind, type SqlServer } from '../helpers/sql-servers.ts';
import { forEachBlobStore, type BlobKind } from '../helpers/blob-stores.ts';
import { createTestBucket, startS3Server, type S3Server } from '../helpers/s3.ts';
import { CUSTOMERS, CUSTOMER_TIERS } from '../fixtures/customer-tiers.ts';

/** Where http_request and db_query are served: the guest's worker under JSPI (the test runner's node flags), else the bridge. */
const IO_SERVED = jspiAvailable() ? 'worker' : 'host';

const root = new URL('../../', import.meta.url);
const fixture = (p: string) => readFileSync(new URL(`fixtures/wasm/${p}`, root));
const PLUGIN = fixture('customer-analysis-plugin/customer-analysis-plugin.wasm');
const SIGNED_REPORT = fixture('signed-report/signed-report.wasm');
const TABLE_DDL =
  'CREATE TABLE customer_analysis (execution_id varchar(64), customer_id varchar(64), name varchar(200), revenue numeric(14,2), tier varchar(16))';
const TIER_COUNTS = { platinum: 1, gold: 1, silver: 1, bronze: 1 };
type Perm = { type: string; resource_pattern: string | null };

/** What one test app offers the tests: upload, permissions, jobs, runs, logs, metrics. */
function harness(get: () => TestApp) {
  const h = {
    async upload(file: Buffer, name: string, version = '1.0.0'): Promise<any> {
      const t = get();
      const form = new FormData();
      form.set('file', new Blob([file]), `${name}.wasm`);
      form.set('name', name);
      form.set('version', version);
      form.set('author', 'tests');
      const res = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
      const body: any = await res.json();
      assert.equal(res.status, 201, JSON.stringify(body));
      return body;
    },
    async grant(moduleId: string, permissions: Perm[]): Promise<void> {
      const r = await get().api('PUT', `/api/v1/wasm/modules/${moduleId}/permissions`, { body: { permissions } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    },
    async variable(name: string, value: unknown, secret = false): Promise<void> {
      const r = await get().api('PUT', `/api/v1/variables/${name}`, { body: { value, secret } });
      assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
    },
    async job(doc: unknown): Promise<any> {
      const r = await get().api('POST', '/api/v1/jobs', { body: doc });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    },
    async finished(executionId: string, timeoutMs = 60_000): Promise<any> {
      return waitFor(
        async () => {
          const r = await get().api('GET', `/api/v1/executions/${executionId}`);
          return ['succeeded', 'failed', 'dead_lettered', 'cancelled'].includes(r.body.status) ? r.body : null;
        },
        `execution ${executionId} to finish`,
        timeoutMs,
      );
    },
    async trigger(jobId: string): Promise<any> {
      const r = await get().api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: {} });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      return h.finished(r.body.execution_id);
    },
    async logs(executionId: string): Promise<any[]> {
      const r = await get().api('GET', `/api/v1/wasm/executions/${executionId}/logs`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.logs;
    },
    /** The run's host-call record, as the logs API shows it. */
    async hostCalls(executionId: string): Promise<any[]> {
      const [log] = await h.logs(executionId);
      assert.ok(log, `no wasm log for execution ${executionId}`);
      assert.ok(Array.isArray(log.host_calls), `the log has no host_calls: ${JSON.stringify(log)}`);
      return log.host_calls;
    },
    /** The value of one sample of a Prometheus counter (0 when it has not been counted yet). */
    async metric(name: string, labels: Record<string, string>): Promise<number> {
      const r = await get().api('GET', '/metrics');
      assert.equal(r.status, 200);
      for (const line of String(r.body).split('\n')) {
        const m = /^([a-z_:]+)\{([^}]*)\} ([0-9.e+-]+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const got = Object.fromEntries([...m[2].matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
      }
      return 0;
    },
  };
  return h;
}

const step = (e: any, id: string) => e.steps.find((s: any) => s.id === id);

/** The plugin's job: one wasm step (its input says where to fetch and write), then the VIP notice it routes to. */
function pluginJob(name: string, input: Record<string, unknown>, apiUrl: string, config: Record<string, unknown> = {}) {
  return {
    name,
    max_retries: 0,
    steps: [
      {
        id: 'analyse',
        type: 'wasm',
        config: {
          module_id: 'customer-analysis-plugin@1.0.0',
          function_name: 'analyse_customers',
          fuel_limit: 20_000_000,
          timeout_seconds: 20,
          ...config,
          input: { datasource: 'analytics_db', execution_id: '{{execution.id}}', on_platinum: 'notify_vip', ...input },
        },
      },
      { id: 'notify_vip', type: 'http', config: { method: 'POST', url: `${apiUrl}/vip`, body: { tiers: '{{steps.analyse.output.summary.tiers}}' } } },
    ],
  };
}

/** A TCP listener that counts the connections it gets (for "no connection was made"). */
async function countingListener(host: string): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => n,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('host functions: the customer-analysis plugin (http_request + db_query)', () => {
  let t: TestApp;
  let api: TestServer;
  let module: any;
  let denied: Awaited<ReturnType<typeof countingListener>>;
  /** Requests to /slow are held open; each one's close is recorded (the abort of a timed-out call). */
  const slowClosed: number[] = [];
  const h = harness(() => t);

  before(async () => {
    api = await startHttpServer((req, res) => {
      if (req.method === 'GET' && req.url === '/customers') return json(res, 200, { data: { customers: CUSTOMERS } });
      if (req.method === 'GET' && req.url === '/broken') return json(res, 500, { error: 'down' });
      if (req.method === 'GET' && req.url === '/slow') {
        res.on('close', () => slowClosed.push(Date.now()));
        return; // never answers
      }
      if (req.method === 'POST' && req.url === '/vip') return json(res, 201, { ok: true });
      return json(res, 404, { error: 'no such thing' });
    });
    // 127.0.0.3 is refused by the egress policy of this app: a connection there would be a leak.
    denied = await countingListener('127.0.0.3');
    t = await startTestApp('pglite', { VECRON_WORKER_CONCURRENCY: '2', VECRON_POLL_INTERVAL_MS: '200', VECRON_EGRESS_DENY: '127.0.0.3' });
    module = await h.upload(PLUGIN, 'customer-analysis-plugin');
  });
  after(async () => {
    await t?.close();
    await api?.close();
    await denied?.close();
  });

  const exactly = (datasource = 'analytics_db'): Perm[] => [
    { type: 'http:read', resource_pattern: `${api.url}/customers` },
    { type: 'database:write', resource_pattern: `${datasource}/customer_analysis` },
  ];

  forEachSqlServer((kind: SqlKind) => {
    it(`${kind}: granted exactly http:read on the URL and database:write on the table, it fetches, classifies, inserts and routes`, async () => {
      const sql: SqlServer = await openSqlServer(kind);
      try {
        await sql.sql(TABLE_DDL);
        const datasource = `analytics_${kind}`;
        await h.variable(datasource, sql.url, true);
        await h.grant(module.id, exactly(datasource));
        const job = await h.job(
          pluginJob(
            `plugin-${kind}`,
            { customers_url: `${api.url}/customers`, datasource, ...(sql.type === 'mysql' ? { placeholders: 'mysql' } : {}) },
            api.url,
          ),
        );
        const e = await h.trigger(job.id);
        assert.equal(e.status, 'succeeded', JSON.stringify(e.error ?? e.steps));
        const out = step(e, 'analyse').output;
        assert.deepEqual(out.customers, CUSTOMER_TIERS.customers);
        assert.deepEqual(out.summary, { customers: 4, total_revenue: CUSTOMER_TIERS.total_revenue, tiers: TIER_COUNTS, rows_written: 4 });
        assert.equal(out.next_step, 'notify_vip');
        assert.equal(step(e, 'notify_vip').status, 'succeeded');
        assert.deepEqual(JSON.parse(api.seen.filter((r) => r.url === '/vip').at(-1)!.body), { tiers: TIER_COUNTS });

        const rows = await sql.sql(
          'SELECT customer_id, name, tier, revenue FROM customer_analysis WHERE execution_id = ' +
            (sql.type === 'mysql' ? '?' : '$1') +
            ' ORDER BY customer_id',
          [e.id],
        );
        assert.deepEqual(
          rows.map((r: any) => ({ id: r.customer_id, name: r.name, revenue: Number(r.revenue), tier: r.tier })),
          CUSTOMER_TIERS.customers,
        );

        // the record of the run's calls: what, where, how it went, bounded and masked
        const calls = await h.hostCalls(e.id);
        assert.deepEqual(
          calls.map((c) => [c.seq, c.function, c.outcome, c.served]),
          [
            [0, 'http_request', 'ok', IO_SERVED],
            [1, 'db_query', 'ok', IO_SERVED],
          ],
        );
        assert.equal(calls[0].target, `${api.url}/customers`);
        assert.match(calls[1].target, new RegExp(`^${datasource}/customer_analysis`));
        for (const c of calls) {
          assert.ok(c.duration_us > 0 && c.bytes_in > 0 && c.bytes_out > 0, JSON.stringify(c));
          assert.ok(!Number.isNaN(Date.parse(c.at)));
        }
        assert.equal(calls[0].response.status, 200);
        // the datasource is a secret variable: its DSN (and password) appears nowhere in the record
        const text = JSON.stringify(await h.logs(e.id));
        assert.ok(!text.includes(sql.url), 'the DSN is not in the logs');
        const password = decodeURIComponent(new URL(sql.url).password);
        if (password.length >= 4) assert.ok(!text.includes(password), 'the datasource password is not in the logs');
      } finally {
        await sql.close();
      }
    });
  });

  it('without database:write the guest gets permission_denied as an answer and reports it: no row, an audit row, the metric, the record', async () => {
    const sql = await openSqlServer('pglite');
    try {
      await sql.sql(TABLE_DDL);
      await h.variable('analytics_db', sql.url, true);
      await h.grant(module.id, [{ type: 'http:read', resource_pattern: `${api.url}/customers` }]);
      const labels = { function: 'db_query', permission: 'database:write' };
      const before = await h.metric('vecron_wasm_host_denied_total', labels);
      const job = await h.job(pluginJob('plugin-no-db-write', { customers_url: `${api.url}/customers` }, api.url));
      const e = await h.trigger(job.id);
      assert.equal(e.status, 'failed', JSON.stringify(e));
      assert.equal(e.attempt, 1, 'a verdict is not retried');
      // the guest handled the answer and returned its verdict: validation_failed, not a trap
      assert.equal(e.error.code, 'validation_failed', JSON.stringify(e.error));
      const errors = step(e, 'analyse').error.details.errors;
      assert.equal(errors.length, 1);
      assert.match(errors[0], /^db_query: permission_denied: .*database:write/);
      assert.equal(step(e, 'notify_vip').status, 'skipped');
      assert.equal((await sql.sql('SELECT count(*)::int AS n FROM customer_analysis'))[0].n, 0);

      const [log] = await h.logs(e.id);
      assert.equal(log.error.code, 'validation_failed');
      const calls = log.host_calls;
      assert.deepEqual(
        calls.map((c: any) => [c.function, c.outcome, c.permission ?? null]),
        [
          ['http_request', 'ok', null],
          ['db_query', 'permission_denied', 'database:write'],
        ],
      );
      assert.equal(calls[1].response.error.code, 'permission_denied');

      assert.equal(await h.metric('vecron_wasm_host_denied_total', labels), before + 1);
      const audit = await waitFor(async () => {
        const r = await t.api('GET', `/api/v1/audit?resource_id=${module.id}&outcome=denied`);
        return r.body.items.find((a: any) => JSON.stringify(a).includes('database:write'));
      }, 'an audit row of the denial');
      assert.equal(audit.outcome, 'denied');
      assert.match(JSON.stringify(audit.details), /db_query/);
    } finally {
      await sql.close();
    }
  });

  it('without http:read the fetch is refused before any request leaves', async () => {
    await h.grant(module.id, [{ type: 'database:write', resource_pattern: 'analytics_db/customer_analysis' }]);
    const seen = api.seen.length;
    const labels = { function: 'http_request', permission: 'http:read' };
    const before = await h.metric('vecron_wasm_host_denied_total', labels);
    const job = await h.job(pluginJob('plugin-no-http-read', { customers_url: `${api.url}/customers` }, api.url));
    const e = await h.trigger(job.id);
    assert.equal(e.status, 'failed');
    assert.equal(e.error.code, 'validation_failed');
    assert.match(step(e, 'analyse').error.details.errors[0], /^http_request: permission_denied: /);
    assert.equal(api.seen.length, seen, 'the API saw no request');
    assert.equal(await h.metric('vecron_wasm_host_denied_total', labels), before + 1);
    // a URL the pattern does not match is refused the same way, however it is spelled
    await h.grant(module.id, exactly());
    const other = await h.job(pluginJob('plugin-other-url', { customers_url: `${api.url}/customers/../broken` }, api.url));
    const o = await h.trigger(other.id);
    assert.equal(o.status, 'failed');
    assert.match(step(o, 'analyse').error.details.errors[0], /^http_request: permission_denied: /);
    assert.equal(api.seen.length, seen, 'still no request');
  });

  it('an upstream error is an answer the guest judges: HTTP 500 fails the step with the guest verdict', async () => {
    await h.grant(module.id, [...exactly(), { type: 'http:read', resource_pattern: `${api.url}/broken` }]);
    const job = await h.job(pluginJob('plugin-broken', { customers_url: `${api.url}/broken` }, api.url));
    const e = await h.trigger(job.id);
    assert.equal(e.status, 'failed');
    assert.equal(e.error.code, 'validation_failed');
    assert.deepEqual(step(e, 'analyse').error.details.errors, [`GET ${api.url}/broken answered HTTP 500`]);
  });

  it('egress refusals make no connection: the metadata address and a denied address, for http_request and db_query', async () => {
    const metadata = 'http://169.254.169.254/latest/meta-data/';
    const deniedUrl = `http://127.0.0.3:${denied.port}/customers`;
    await h.variable('denied_db', `postgres://vecron:secret@127.0.0.3:${denied.port}/postgres`, true);
    // granted, so that only the egress policy stands in the way
    await h.grant(module.id, [
      { type: 'http:read', resource_pattern: 'http://169.254.169.254/**' },
      { type: 'http:read', resource_pattern: `http://127.0.0.3:${denied.port}/**` },
      { type: 'network:external', resource_pattern: null },
      ...exactly(),
      { type: 'database:write', resource_pattern: 'denied_db/customer_analysis' },
      { type: 'http:read', resource_pattern: `${api.url}/customers` },
    ]);
    for (const [name, input, fn] of [
      ['egress-metadata', { customers_url: metadata }, 'http_request'],
      ['egress-denied-http', { customers_url: deniedUrl }, 'http_request'],
      ['egress-denied-db', { customers_url: `${api.url}/customers`, datasource: 'denied_db' }, 'db_query'],
    ] as const) {
      const job = await h.job(pluginJob(name, input, api.url));
      const e = await h.trigger(job.id);
      assert.equal(e.status, 'failed', name);
      assert.equal(e.error.code, 'validation_failed', `${name}: ${JSON.stringify(e.error)}`);
      assert.match(step(e, 'analyse').error.details.errors[0], new RegExp(`^${fn}: egress_denied: `), name);
      const calls = await h.hostCalls(e.id);
      assert.equal(calls.at(-1).outcome, 'egress_denied', name);
    }
    assert.equal(denied.connections(), 0, 'the denied listener saw no connection');
  });

  it('a call that outlives the step timeout ends the run within timeout + 1 s and aborts the request', async () => {
    await h.grant(module.id, [{ type: 'http:read', resource_pattern: `${api.url}/slow` }]);
    const job = await h.job(pluginJob('plugin-slow', { customers_url: `${api.url}/slow` }, api.url, { timeout_seconds: 1 }));
    const r = await t.api('POST', `/api/v1/jobs/${job.id}/trigger`, { body: {} });
    const e = await h.finished(r.body.execution_id);
    assert.equal(e.error.code, 'timeout', JSON.stringify(e.error));
    const s = step(e, 'analyse');
    const took = s.duration_ms;
    assert.ok(took < 2000, `the step took ${took} ms (timeout 1 s)`);
    const [log] = await h.logs(e.id);
    assert.equal(log.error.code, 'timeout');
    assert.ok(log.duration_ms < 2000, `the run took ${log.duration_ms} ms`);
    // the upstream request was aborted, not left hanging
    const req = api.seen.filter((x) => x.url === '/slow').at(-1)!;
    await waitFor(async () => slowClosed.some((at) => at >= req.at), 'the slow request to be closed', 5000);
    assert.ok(slowClosed.at(-1)! - req.at < 2500, 'closed soon after the timeout');
  });
});

forEachBlobStore('host functions: the signed-report module (file_read, file_write, crypto, time)', (kind: BlobKind) => {
  let t: TestApp;
  let s3: S3Server | undefined;
  let bucket: Awaited<ReturnType<typeof createTestBucket>> | undefined;
  let module: any;
  const h = harness(() => t);
  const KEY = 'hmac-key-Zq8vN3pL1xR7';
  const CSV = 'id,amount,note\r\n1,10.5,first\r\n2,20,"second"\r\n3,0.1,\r\n';

  before(async () => {
    const env: Record<string, string> = { VECRON_WORKER_CONCURRENCY: '2', VECRON_POLL_INTERVAL_MS: '200' };
    if (kind === 's3') {
      s3 = await startS3Server();
      bucket = await createTestBucket(s3);
      Object.assign(env, {
        VECRON_S3_BUCKET: bucket.settings.bucket,
        VECRON_S3_ENDPOINT: bucket.settings.endpoint!,
        VECRON_S3_REGION: bucket.settings.region,
        VECRON_S3_ACCESS_KEY_ID: bucket.settings.accessKeyId!,
        VECRON_S3_SECRET_ACCESS_KEY: bucket.settings.secretAccessKey!,
      });
    }
    t = await startTestApp('pglite', env);
    assert.equal(t.app.blobs.kind, kind === 's3' ? 's3' : 'fs');
    module = await h.upload(SIGNED_REPORT, 'signed-report');
    await h.variable('REPORT_KEY', KEY, true);
  });
  after(async () => {
    await t?.close();
    await bucket?.drop();
    await s3?.stop();
  });

  const reportJob = (name: string, input: Record<string, unknown> = {}) => ({
    name,
    max_retries: 0,
    steps: [
      {
        id: 'sign',
        type: 'wasm',
        config: {
          module_id: 'signed-report',
          function_name: 'sign_report',
          fuel_limit: 20_000_000,
          input: { csv_path: 'input/sales.csv', report_path: 'reports/sales.json', key_secret: 'REPORT_KEY', ...input },
        },
      },
    ],
  });
  const all: Perm[] = [
    { type: 'file:read', resource_pattern: 'input/*.csv' },
    { type: 'file:write', resource_pattern: 'reports/**' },
    { type: 'secret:use', resource_pattern: 'REPORT_KEY' },
  ];

  it('reads the CSV from its job area, signs the report with the named key and writes it back; the key never shows', async () => {
    await h.grant(module.id, all);
    const job = await h.job(reportJob(`signed-report-${kind}`));
    await t.app.blobs.put(`jobs/${job.id}/input/sales.csv`, Buffer.from(CSV));
    const e = await h.trigger(job.id);
    assert.equal(e.status, 'succeeded', JSON.stringify(e.error ?? e.steps));
    const out = step(e, 'sign').output;
    assert.equal(out.rows, 3);
    assert.equal(out.total, 10.5 + 20 + 0.1);
    assert.equal(out.csv_sha256, createHash('sha256').update(CSV).digest('hex'));

    const file = await t.app.blobs.get(`jobs/${job.id}/reports/sales.json`);
    assert.equal(out.report_size, file.length);
    assert.equal(out.report_sha256, createHash('sha256').update(file).digest('hex'));
    const doc = JSON.parse(file.toString('utf8'));
    assert.deepEqual(doc.report, {
      source: 'input/sales.csv',
      rows: 3,
      column: 'amount',
      total: out.total,
      csv_sha256: out.csv_sha256,
      generated_at: out.generated_at,
      tz: 'Asia/Ho_Chi_Minh',
    });
    // the signature is the HMAC under the secret's value: the host used the key the guest named
    assert.equal(doc.signature.hex, createHmac('sha256', KEY).update(JSON.stringify(doc.report)).digest('hex'));
    assert.equal(out.signature, doc.signature.hex);
    // the time came from the host, in the zone asked for
    assert.ok(Math.abs(Date.parse(out.generated_at) - Date.now()) < 60_000, out.generated_at);

    const calls = await h.hostCalls(e.id);
    assert.deepEqual(
      calls.map((c) => [c.function, c.outcome]),
      [
        ['file_read', 'ok'],
        ['crypto', 'ok'],
        ['time', 'ok'],
        ['crypto', 'ok'],
        ['file_write', 'ok'],
      ],
    );
    assert.equal(calls[2].served, 'worker', 'time is served inside the worker');
    // The key is granted by its name: the main thread resolved it for the run and the worker used it (no hop).
    assert.equal(calls[3].served, 'worker', 'a keyed crypto call with a key granted by name is served inside the worker');
    assert.equal(calls[3].request.key_secret, 'REPORT_KEY');
    const text = JSON.stringify(await h.logs(e.id)) + JSON.stringify(e);
    for (const form of [KEY, Buffer.from(KEY).toString('base64'), Buffer.from(KEY).toString('hex')]) {
      assert.ok(!text.includes(form), `the key (${form}) appears nowhere in the logs or the execution`);
    }
  });

  async function deniedRun(missing: 'secret:use' | 'file:write', fn: string, grants: Perm[]) {
    await h.grant(module.id, grants);
    const job = await h.job(reportJob(`signed-report-no-${missing.replace(':', '-')}-${kind}`));
    await t.app.blobs.put(`jobs/${job.id}/input/sales.csv`, Buffer.from(CSV));
    const e = await h.trigger(job.id);
    assert.equal(e.status, 'failed', missing);
    assert.equal(e.error.code, 'validation_failed', JSON.stringify(e.error));
    assert.match(step(e, 'sign').error.details.errors[0], new RegExp(`^${fn}: permission_denied: `), missing);
    assert.equal(await t.app.blobs.stat(`jobs/${job.id}/reports/sales.json`), null, `${missing}: no report written`);
    const calls = await h.hostCalls(e.id);
    assert.equal(calls.at(-1).outcome, 'permission_denied');
    assert.equal(calls.at(-1).permission, missing);
    // the calls before the refused one went through
    assert.deepEqual(
      calls.slice(0, -1).map((c: any) => c.outcome),
      calls.slice(0, -1).map(() => 'ok'),
    );
  }

  it('without secret:use on the key the HMAC is refused as an answer: no report is written', async () => {
    await deniedRun(
      'secret:use',
      'crypto',
      all.filter((p) => p.type !== 'secret:use'),
    );
  });

  it('without file:write the report is not written', async () => {
    await deniedRun(
      'file:write',
      'file_write',
      all.filter((p) => p.type !== 'file:write'),
    );
  });

  it("another job's area and paths that climb out are refused", async () => {
    await h.grant(module.id, [...all.filter((p) => p.type !== 'secret:use'), { type: 'file:read', resource_pattern: '**' }]);
    const other = await h.job(reportJob(`signed-report-other-${kind}`));
    await t.app.blobs.put(`jobs/${other.id}/input/sales.csv`, Buffer.from(CSV));
    for (const csv_path of ['../' + other.id + '/input/sales.csv', `/jobs/${other.id}/input/sales.csv`, `jobs/${other.id}/input/sales.csv`]) {
      const job = await h.job(reportJob(`signed-report-climb-${kind}-${Math.random().toString(36).slice(2, 8)}`, { csv_path }));
      const e = await h.trigger(job.id);
      assert.equal(e.status, 'failed', csv_path);
      assert.match(step(e, 'sign').error.details.errors[0], /^file_read: (permission_denied|bad_request|not_found): /, csv_path);
    }
  });
});
