/**
 * A shadow test never sends a host call (issue 20): the customer-analysis plugin fetches its
 * customers with http_request and writes their tiers with db_query itself. Its runs are recorded
 * against a real HTTP server and a real PostgreSQL-protocol database (PGlite behind its wire
 * server); then the build with the gold threshold at 40,000 replays them. For the runs with a
 * customer in (40000, 50000] its INSERT carries other tiers than the record holds: that call is
 * reported as the divergence (host_call_request at call 1, db_query), and neither the HTTP server
 * nor the database gets a single connection during the shadow test or a server-side replay.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { openSqlServer, type SqlServer } from '../helpers/sql-servers.ts';
import { createJob, customersOf, expectedDiff, fixture, runAll, upload } from './shadow-support.ts';

const RUNS = 6;
const TABLE_DDL =
  'CREATE TABLE customer_analysis (execution_id varchar(64), customer_id varchar(64), name varchar(200), revenue numeric(14,2), tier varchar(16))';

/** A TCP proxy to `port` that counts the connections it is given. */
async function countingProxy(port: number): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    n++;
    const up = connect(port, '127.0.0.1');
    for (const x of [s, up]) {
      sockets.add(x);
      x.on('close', () => sockets.delete(x));
      x.on('error', () => {});
    }
    s.pipe(up).pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
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

describe('shadow test: the customer-analysis plugin, a changed db_query is a divergence, never sent', () => {
  let t: TestApp;
  let sql: SqlServer;
  let db: Awaited<ReturnType<typeof countingProxy>>;
  let http: HttpServer;
  let httpUrl: string;
  let httpConnections = 0;
  let job: any;
  let ids: string[];

  before(async () => {
    http = createHttpServer((req, res) => {
      const run = Number((req.url ?? '').split('/').pop());
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: { customers: customersOf(run) } }));
    });
    http.on('connection', () => httpConnections++);
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    sql = await openSqlServer('pglite');
    await sql.sql(TABLE_DDL);
    db = await countingProxy(Number(new URL(sql.url).port));
    t = await startTestApp('pglite', { VECRON_WORKER_CONCURRENCY: '2', VECRON_POLL_INTERVAL_MS: '100' });
    const v1 = await upload(t, fixture('customer-analysis-plugin/customer-analysis-plugin.wasm'), 'customer-analysis-plugin', '1.0.0');
    const v2 = await upload(t, fixture('customer-analysis-plugin/customer-analysis-plugin-gold-40000.wasm'), 'customer-analysis-plugin', '1.1.0');
    const url = new URL(sql.url);
    url.port = String(db.port);
    const v = await t.api('PUT', '/api/v1/variables/analytics_db', { body: { value: url.toString(), secret: true } });
    assert.ok(v.status === 200 || v.status === 201, JSON.stringify(v.body));
    for (const m of [v1, v2]) {
      const r = await t.api('PUT', `/api/v1/wasm/modules/${m.id}/permissions`, {
        body: {
          permissions: [
            { type: 'http:read', resource_pattern: `${httpUrl}/customers/*` },
            { type: 'database:write', resource_pattern: 'analytics_db/customer_analysis' },
          ],
        },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    job = await createJob(t, {
      name: 'customer-analysis-plugin',
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
            input: { customers_url: `${httpUrl}/customers/{{trigger.payload.run}}`, datasource: 'analytics_db', execution_id: '{{execution.id}}' },
          },
        },
      ],
    });
    ids = await runAll(
      t,
      job.id,
      Array.from({ length: RUNS }, (_, i) => ({ run: i })),
    );
    const rows = await sql.sql('SELECT count(*)::int AS n FROM customer_analysis');
    assert.equal(
      rows[0].n,
      ids.reduce((s, _id, i) => s + customersOf(i).length, 0),
      'the recorded runs wrote their rows for real',
    );
  });
  after(async () => {
    await t?.close();
    await db?.close();
    await sql?.close();
    await new Promise((r) => (http ? http.close(r) : r(null)));
  });

  it('the runs whose INSERT the new threshold changes diverge at db_query; the others give the same output; no connection is made', async () => {
    const httpBefore = httpConnections;
    const dbBefore = db.connections();
    const rowsBefore = (await sql.sql('SELECT count(*)::int AS n FROM customer_analysis'))[0].n;
    const r = await t.api('POST', '/api/v1/wasm/modules/customer-analysis-plugin@1.1.0/shadow', { body: { job_id: job.id, step_id: 'analyse', count: RUNS } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.totals.runs, RUNS);
    const changed = new Set(ids.filter((_, i) => expectedDiff(i).length > 0));
    assert.deepEqual(
      [...changed].map((id) => ids.indexOf(id)),
      [0, 3],
    );
    for (const run of r.body.runs) {
      const i = ids.indexOf(run.execution_id);
      if (changed.has(run.execution_id)) {
        assert.equal(run.outcome, 'diverged', `run ${i}: ${JSON.stringify(run)}`);
        assert.equal(run.divergence.kind, 'host_call_request');
        assert.equal(run.divergence.call_index, 1, 'call 0 is the GET, call 1 the INSERT');
        assert.equal(run.divergence.function, 'db_query');
        assert.ok(run.diff?.length > 0, 'the guest got unavailable for the INSERT: its answer differs too');
      } else {
        assert.equal(run.outcome, 'same_output', `run ${i}: ${JSON.stringify(run)}`);
      }
    }
    assert.equal(r.body.totals.diverged, 2);
    assert.equal(r.body.totals.same_output, RUNS - 2);
    assert.equal(httpConnections, httpBefore, 'no connection to the HTTP server');
    assert.equal(db.connections(), dbBefore, 'no connection to the database');
    assert.equal((await sql.sql('SELECT count(*)::int AS n FROM customer_analysis'))[0].n, rowsBefore, 'no row written');
  });

  it('the replay button: the recorded run reproduces on the server, every host call answered from the record, no connection', async () => {
    const httpBefore = httpConnections;
    const dbBefore = db.connections();
    const r = await t.api('POST', `/api/v1/executions/${ids[3]}/steps/analyse/replay`, { body: {} });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result.status, 'reproduced', JSON.stringify(r.body.result));
    assert.equal(r.body.result.replay.host_calls, 2);
    assert.equal(r.body.module.version, '1.0.0');
    assert.equal(r.body.attempt, 1);
    assert.equal(httpConnections, httpBefore);
    assert.equal(db.connections(), dbBefore);
    // No record for a step that is not there, and no execution: an answer, and a 404.
    const none = await t.api('POST', `/api/v1/executions/${ids[3]}/steps/nope/replay`, { body: {} });
    assert.equal(none.status, 200, JSON.stringify(none.body));
    assert.equal(none.body.result.status, 'could_not_replay');
    assert.equal(none.body.result.reason, 'not_recorded');
    const gone = await t.api('POST', '/api/v1/executions/00000000-0000-4000-8000-000000000000/steps/analyse/replay', { body: {} });
    assert.equal(gone.status, 404);
    const bad = await t.api('POST', `/api/v1/executions/${ids[3]}/steps/analyse/replay`, { body: { attempt: 0 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details.problems[0].path, 'attempt');
  });
});
