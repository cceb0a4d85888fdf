import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { openTestDb } from '../helpers/db.ts';
import { loadConfig } from '../../src/config/index.ts';
import { startApp, type App } from '../../src/app.ts';
import { hashToken, tokenKeyFor } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/logger.ts';
import type { Database } from '../../src/db/database.ts';
import { API_ONLY, MISSING_ID, assertError, flatJob } from './support.ts';

describe('API authentication and roles', () => {
  let t: TestApp;
  let viewer: string;
  let operator: string;
  let jobId: string;

  before(async () => {
    t = await startTestApp('pglite', API_ONLY);
    viewer = await t.token('viewer', 'read-only-bot');
    operator = await t.token('operator', 'ops-bot');
    const r = await t.api('POST', '/api/v1/jobs', { body: flatJob('auth-fixture') });
    assert.equal(r.status, 201);
    jobId = r.body.id;
  });
  after(async () => {
    await t?.close();
  });

  const jobVersion = async () => (await t.app.db.query<{ version: number }>('SELECT version FROM jobs WHERE id = $1', [jobId])).rows[0]?.version;
  const executionCount = async () => (await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM executions')).rows[0].n;

  it('without a token: 401 unauthorized with a WWW-Authenticate header, on reads and writes', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/jobs'],
      ['GET', `/api/v1/jobs/${jobId}`],
      ['POST', '/api/v1/jobs'],
      ['POST', `/api/v1/jobs/${jobId}/trigger`],
      ['GET', '/api/v1/executions'],
      ['GET', '/api/v1/audit'],
      ['GET', '/api/v1/tokens'],
      ['GET', '/api/v1/unknown-route'],
    ]) {
      const r = await t.api(method, path, { token: null, ...(method === 'POST' ? { body: flatJob('anon') } : {}) });
      assertError(r, 401, 'unauthorized', 'Authorization', 'Bearer');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="vecron"/, `${method} ${path}`);
    }
    assert.equal(await executionCount(), 0);
    const anon = await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE name = 'anon'");
    assert.equal(anon.rows[0].n, 0);
  });

  it('a malformed Authorization header is 401 saying the expected form', async () => {
    for (const header of ['Token abc', 'Bearer', 'Bearer ', 'Bearer a b', 'Basic dXNlcjpwYXNz', t.adminToken]) {
      const r = await t.api('GET', '/api/v1/jobs', { token: null, headers: { authorization: header } });
      assertError(r, 401, 'unauthorized', 'Bearer <token>');
      assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_request"/, `header ${JSON.stringify(header)}`);
    }
  });

  it('an unknown token is 401 invalid_token', async () => {
    const r = await t.api('GET', '/api/v1/jobs', { token: 'vcr_this-token-was-never-issued-by-anyone' });
    assertError(r, 401, 'unauthorized', /unknown or has been revoked/);
    assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  it('a viewer can read jobs, executions and the audit log', async () => {
    const trig = await t.api('POST', `/api/v1/jobs/${jobId}/trigger`);
    assert.equal(trig.status, 202);
    for (const path of [
      '/api/v1/jobs',
      `/api/v1/jobs/${jobId}`,
      `/api/v1/jobs/${jobId}/executions`,
      '/api/v1/executions',
      `/api/v1/executions/${trig.body.execution_id}`,
      '/api/v1/audit',
    ]) {
      const r = await t.api('GET', path, { token: viewer });
      assert.equal(r.status, 200, `viewer GET ${path}: ${JSON.stringify(r.body)}`);
    }
  });

  it('a viewer cannot change anything: 403 forbidden naming the operator role, nothing changes', async () => {
    const before = { version: await jobVersion(), executions: await executionCount() };
    for (const [method, path, body] of [
      ['POST', '/api/v1/jobs', flatJob('viewer-made')],
      ['POST', '/api/v1/jobs', { not: 'even valid' }], // the role is checked before the body
      ['PUT', `/api/v1/jobs/${jobId}`, flatJob('viewer-renamed')],
      ['DELETE', `/api/v1/jobs/${jobId}`, undefined],
      ['POST', `/api/v1/jobs/${jobId}/enable`, undefined],
      ['POST', `/api/v1/jobs/${jobId}/disable`, undefined],
      ['POST', `/api/v1/jobs/${jobId}/trigger`, undefined],
    ] as const) {
      const r = await t.api(method, path, { token: viewer, body });
      assertError(r, 403, 'forbidden', 'operator role', "'read-only-bot'", 'viewer');
    }
    for (const [method, path] of [
      ['GET', '/api/v1/tokens'],
      ['POST', '/api/v1/tokens'],
      ['DELETE', `/api/v1/tokens/${MISSING_ID}`],
    ]) {
      const r = await t.api(method, path, { token: viewer, ...(method === 'POST' ? { body: { name: 'x', role: 'admin' } } : {}) });
      assertError(r, 403, 'forbidden', 'admin role');
    }
    assert.equal(await jobVersion(), before.version);
    assert.equal(await executionCount(), before.executions);
    const made = await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE name LIKE 'viewer-%'");
    assert.equal(made.rows[0].n, 0);
  });

  it('an operator can create, update, trigger, disable, enable and delete jobs', async () => {
    const c = await t.api('POST', '/api/v1/jobs', { token: operator, body: flatJob('operator-job') });
    assert.equal(c.status, 201);
    const id = c.body.id;
    assert.equal((await t.api('PUT', `/api/v1/jobs/${id}`, { token: operator, body: flatJob('operator-job', { description: 'd' }) })).status, 200);
    assert.equal((await t.api('POST', `/api/v1/jobs/${id}/trigger`, { token: operator })).status, 202);
    assert.equal((await t.api('POST', `/api/v1/jobs/${id}/disable`, { token: operator })).status, 200);
    assert.equal((await t.api('POST', `/api/v1/jobs/${id}/enable`, { token: operator })).status, 200);
    assert.equal((await t.api('DELETE', `/api/v1/jobs/${id}`, { token: operator })).status, 204);
    assert.equal((await t.api('GET', `/api/v1/jobs/${id}`, { token: operator })).status, 404);
  });

  it('an operator cannot manage tokens: 403 naming the admin role', async () => {
    for (const [method, path, body] of [
      ['GET', '/api/v1/tokens', undefined],
      ['POST', '/api/v1/tokens', { name: 'escalate', role: 'admin' }],
      ['DELETE', `/api/v1/tokens/${MISSING_ID}`, undefined],
    ] as const) {
      const r = await t.api(method, path, { token: operator, body });
      assertError(r, 403, 'forbidden', 'admin role', "'ops-bot'", 'operator');
    }
    const n = await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM api_tokens WHERE name = 'escalate'");
    assert.equal(n.rows[0].n, 0);
  });

  it('an admin creates a token (value shown once, only its hash stored), lists tokens without values, and revokes it', async () => {
    const c = await t.api('POST', '/api/v1/tokens', { body: { name: 'deploy-bot', role: 'operator' } });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    const value: string = c.body.token;
    assert.match(value, /^vcr_[A-Za-z0-9_-]{43}$/);
    assert.equal(c.body.name, 'deploy-bot');
    assert.equal(c.body.role, 'operator');
    assert.ok(!('prefix' in c.body), 'no part of the token besides the value shown once');
    assert.equal(c.body.created_by, 'test-admin');
    assert.equal(c.body.revoked_at, null);
    assert.ok(!('token_hash' in c.body));

    const stored = await t.app.db.query<any>('SELECT *, row_to_json(api_tokens)::text AS raw FROM api_tokens WHERE id = $1', [c.body.id]);
    // HMAC-SHA256 keyed from the server's secret key, not a plain hash: the database alone cannot confirm a guess.
    assert.equal(stored.rows[0].token_hash, hashToken(tokenKeyFor(t.app.config), value));
    assert.notEqual(stored.rows[0].token_hash, createHash('sha256').update(value).digest('hex'));
    assert.equal(stored.rows[0].hash_scheme, 'hmac-sha256');
    assert.ok(!stored.rows[0].raw.includes(value), 'the token value itself is not stored');
    for (let n = 6; n <= value.length; n++) assert.ok(!stored.rows[0].raw.includes(value.slice(0, n)), 'no prefix of it either');

    // it works, with its role
    assert.equal((await t.api('GET', '/api/v1/jobs', { token: value })).status, 200);
    assertError(await t.api('GET', '/api/v1/tokens', { token: value }), 403, 'forbidden', 'admin role');

    const list = await t.api('GET', '/api/v1/tokens');
    assert.equal(list.status, 200);
    const mine = list.body.items.find((x: any) => x.id === c.body.id);
    assert.deepEqual({ name: mine.name, role: mine.role, revoked_at: mine.revoked_at }, { name: 'deploy-bot', role: 'operator', revoked_at: null });
    assert.ok(mine.last_used_at, 'last use is recorded');
    const text = JSON.stringify(list.body);
    assert.ok(!text.includes(value), 'the list never shows a token value');
    assert.ok(!text.includes(stored.rows[0].token_hash), 'nor a hash');
    for (const item of list.body.items) {
      assert.deepEqual(Object.keys(item).sort(), ['created_at', 'created_by', 'id', 'last_used_at', 'name', 'revoked_at', 'role']);
    }

    const revoked = await t.api('DELETE', `/api/v1/tokens/${c.body.id}`);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.id, c.body.id);
    assert.ok(revoked.body.revoked_at, 'revoked_at is set');
    assert.ok(!('token' in revoked.body) && !('token_hash' in revoked.body));
    const row = await t.app.db.query<any>('SELECT revoked_at FROM api_tokens WHERE id = $1', [c.body.id]);
    assert.ok(row.rows[0].revoked_at instanceof Date);
    assertError(await t.api('GET', '/api/v1/jobs', { token: value }), 401, 'unauthorized', /revoked/);
    const relisted = (await t.api('GET', '/api/v1/tokens')).body.items.find((x: any) => x.id === c.body.id);
    assert.ok(relisted.revoked_at, 'the list shows it as revoked');
  });

  it('/health, /metrics and the API docs need no token; the OpenAPI document lists the job routes', async () => {
    const health = await t.api('GET', '/health', { token: null });
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    const metrics = await t.api('GET', '/metrics', { token: null });
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.body), /vecron_http_requests_total/);

    const docs = await t.api('GET', '/docs', { token: null });
    assert.equal(docs.status, 200);
    assert.match(String(docs.body), /swagger/i);
    const spec = await t.api('GET', '/docs/json', { token: null });
    assert.equal(spec.status, 200);
    assert.match(spec.body.openapi, /^3\./);
    for (const path of ['/api/v1/jobs', '/api/v1/jobs/{id}', '/api/v1/jobs/{id}/trigger', '/api/v1/executions/{id}', '/api/v1/tokens']) {
      assert.ok(spec.body.paths[path], `the OpenAPI document lists ${path}`);
    }
    assert.ok(spec.body.paths['/api/v1/jobs'].post, 'with POST /api/v1/jobs');
    assert.deepEqual(spec.body.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' });
  });
});

describe('VECRON_BOOTSTRAP_TOKEN', () => {
  const BOOTSTRAP = 'bootstrap-0123456789abcdef-test';
  let db: Database;
  const dataDir = mkdtempSync(join(tmpdir(), 'vecron-bootstrap-'));

  before(async () => {
    db = await openTestDb('pglite');
  });
  after(async () => {
    await db?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Starts an app on the shared database, as a restart of the same deployment would. */
  async function start(): Promise<App & { call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }> }> {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      VECRON_DATA_DIR: dataDir,
      VECRON_LOG_LEVEL: 'silent',
      VECRON_BOOTSTRAP_TOKEN: BOOTSTRAP,
      ...API_ONLY,
    });
    const app = await startApp(config, { db, logger: createLogger('silent') });
    return Object.assign(app, {
      async call(method: string, path: string, body?: unknown) {
        const res = await fetch(app.url + path, {
          method,
          headers: { authorization: `Bearer ${BOOTSTRAP}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      },
    });
  }

  const bootstrapRows = async () => (await db.query<any>("SELECT id, name, role, revoked_at FROM api_tokens WHERE created_by = 'VECRON_BOOTSTRAP_TOKEN'")).rows;

  it('is an admin token; starting again with the same value keeps exactly one token, un-revoked', async () => {
    const first = await start();
    try {
      const tokens = await first.call('GET', '/api/v1/tokens'); // admin only
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.deepEqual(
        tokens.body.items.map((x: any) => [x.name, x.role]),
        [['bootstrap', 'admin']],
      );
      const made = await first.call('POST', '/api/v1/tokens', { name: 'made-by-bootstrap', role: 'viewer' });
      assert.equal(made.status, 201);
      assert.equal((await first.call('POST', '/api/v1/jobs', flatJob('bootstrap-job'))).status, 201);
      const revoked = await first.call('DELETE', `/api/v1/tokens/${tokens.body.items[0].id}`);
      assert.equal(revoked.status, 200);
      assert.equal((await first.call('GET', '/api/v1/jobs')).status, 401, 'revoked for now');
    } finally {
      await first.close();
    }
    const second = await start();
    try {
      const rows = await bootstrapRows();
      assert.equal(rows.length, 1, 'the second start does not add a token');
      assert.equal(rows[0].role, 'admin');
      assert.equal(rows[0].revoked_at, null, 'a start ensures the bootstrap token is usable again');
      const tokens = await second.call('GET', '/api/v1/tokens');
      assert.equal(tokens.status, 200);
      assert.deepEqual(tokens.body.items.map((x: any) => x.name).sort(), ['bootstrap', 'made-by-bootstrap']);
    } finally {
      await second.close();
    }
  });
});
