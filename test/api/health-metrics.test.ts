import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import Fastify from 'fastify';
import { healthRoutes } from '../../src/api/routes/health.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, MISSING_ID, waitFor } from './support.ts';

/** The value of one vecron_http_requests_total series, or null when the series is absent. */
function requestCount(metrics: string, method: string, route: string, status: number): number | null {
  const line = metrics.split('\n').find((l) => l.startsWith(`vecron_http_requests_total{method="${method}",route="${route}",status="${status}"} `));
  return line ? Number(line.split(' ').pop()) : null;
}

forEachDatabase((kind) => {
  describe(`${kind}: /health and /metrics`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(kind, API_ONLY);
    });
    after(async () => {
      await t?.close();
    });

    it('/health answers 200 ok with the database kind and status, without a token', async () => {
      const r = await t.api('GET', '/health', { token: null });
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 'ok');
      assert.equal(r.body.database.kind, kind);
      assert.equal(r.body.database.status, 'ok');
      assert.equal(r.body.database.reason, undefined);
      const ready = await t.api('GET', '/ready', { token: null });
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, 'ready');
      assert.equal(r.body.blob_store, 'fs');
      assert.deepEqual(r.body.roles, ['api']);
      assert.match(r.body.version, /^\d+\.\d+\.\d+/);
      assert.equal(typeof r.body.uptime_seconds, 'number');
    });

    it('/ready answers 503 "starting" until the worker and scheduler roles have started, while /health already answers 200', async () => {
      // The API listens before the other roles start (src/app.ts): the health routes on their own,
      // on this app's database, with the roles not started yet and then started.
      let started = false;
      const a = t.app;
      const app = Fastify();
      await healthRoutes(app as never, {
        db: a.db,
        config: a.config,
        blobs: a.blobs,
        logger: a.logger,
        metrics: a.metrics,
        events: a.events,
        modules: a.modules,
        rolesStarted: () => started,
      });
      try {
        const live = await app.inject({ method: 'GET', url: '/health' });
        assert.equal(live.statusCode, 200);
        assert.equal(live.json().status, 'ok');
        const notYet = await app.inject({ method: 'GET', url: '/ready' });
        assert.equal(notYet.statusCode, 503);
        assert.equal(notYet.json().status, 'not_ready');
        assert.match(notYet.json().reason, /starting/);
        started = true;
        const ready = await app.inject({ method: 'GET', url: '/ready' });
        assert.equal(ready.statusCode, 200);
        assert.equal(ready.json().status, 'ready');
      } finally {
        await app.close();
      }
    });

    it('/metrics is Prometheus text with request counts labelled by route pattern', async () => {
      assert.equal((await t.api('GET', '/api/v1/jobs')).status, 200);
      assert.equal((await t.api('GET', `/api/v1/jobs/${MISSING_ID}`)).status, 404);
      assert.equal((await t.api('GET', '/api/v1/jobs', { token: null })).status, 401);
      assert.equal((await t.api('GET', `/not/a/route/${MISSING_ID}`, { token: null })).status, 404);

      const res = await waitFor(async () => {
        const r = await t.api('GET', '/metrics', { token: null });
        return requestCount(String(r.body), 'GET', '/api/v1/jobs', 200) ? r : null;
      }, 'the counter of GET /api/v1/jobs');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = String(res.body);
      assert.match(text, /^# HELP vecron_http_requests_total /m);
      assert.match(text, /^# TYPE vecron_http_requests_total counter$/m);
      assert.equal(requestCount(text, 'GET', '/api/v1/jobs', 200), 1);
      assert.equal(requestCount(text, 'GET', '/api/v1/jobs', 401), 1);
      assert.equal(requestCount(text, 'GET', '/api/v1/jobs/:id', 404), 1, 'the route pattern, not the concrete id');
      assert.equal(requestCount(text, 'GET', 'unmatched', 404), 1, 'unknown routes share one label');
      assert.ok(!text.includes(MISSING_ID), 'no request path ends up in a label');
      assert.match(text, /^vecron_http_request_duration_seconds_bucket\{.*route="\/api\/v1\/jobs".*\} \d+$/m);
      assert.match(text, /^vecron_process_/m, 'process metrics are exported');
    });
  });

  describe(`${kind}: /health when the database is gone`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(kind, API_ONLY);
    });
    after(async () => {
      // the database is already closed (and, on PostgreSQL, dropped): close only the app
      await t?.app.close();
      if (t) rmSync(t.dataDir, { recursive: true, force: true });
    });

    it('/health stays 200 but says degraded with the reason; /ready answers 503', async () => {
      assert.equal((await t.api('GET', '/health', { token: null })).status, 200);
      await t.app.db.close();
      const r = await t.api('GET', '/health', { token: null });
      assert.equal(r.status, 200, 'liveness: the process is alive');
      assert.equal(r.body.status, 'degraded');
      assert.equal(r.body.database.kind, kind);
      assert.equal(r.body.database.status, 'unreachable');
      assert.equal(typeof r.body.database.reason, 'string');
      assert.ok(r.body.database.reason.length > 0);
      const ready = await t.api('GET', '/ready', { token: null });
      assert.equal(ready.status, 503);
      assert.equal(ready.body.status, 'not_ready');
      assert.equal(ready.body.database.reason, r.body.database.reason);
    });
  });
});
