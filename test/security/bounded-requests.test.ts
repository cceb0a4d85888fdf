/**
 * Bounded requests, tried as a hostile operator and anonymous caller: every input class that gave a
 * 500 (or took gigabytes) now answers 4xx with the path of the problem.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, assertError, flatJob } from '../api/support.ts';
import { loadConfig } from '../../src/config/index.ts';
import { startApp } from '../../src/app.ts';
import { openTestDb } from '../helpers/db.ts';
import { createToken, tokenKeyFor } from '../../src/auth/tokens.ts';

describe('bounded requests', () => {
  let t: TestApp;
  let operator: string;
  before(async () => {
    t = await startTestApp('pglite', API_ONLY);
    operator = await t.token('operator', 'hostile-operator');
  });
  after(async () => {
    await t?.close();
  });
  const as = (method: string, path: string, opts: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}) =>
    t.api(method, path, { token: operator, ...opts });

  it('page and limit are bounded integers on every paged route (page=1e20 was a 500)', async () => {
    for (const path of ['/api/v1/jobs', '/api/v1/audit', '/api/v1/wasm/modules', '/api/v1/executions']) {
      for (const q of ['page=1e20', 'page=100001', 'page=0', 'page=-1', 'page=1.5', 'limit=1e9', 'limit=201', 'page=abc']) {
        const token = path === '/api/v1/audit' ? t.adminToken : operator;
        const res = await t.api('GET', `${path}?${q}`, { token });
        assert.equal(res.status, 400, `${path}?${q}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'validation_failed');
        assert.match(res.body.error.details.problems[0].path, /^querystring\.(page|limit)$/);
      }
      assert.equal((await t.api('GET', `${path}?page=100000&limit=200`, { token: path === '/api/v1/audit' ? t.adminToken : operator })).status, 200);
    }
  });

  it('NUL characters anywhere (names, descriptions, values, search, keys) are 400 with the field path', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/api/v1/jobs', flatJob('a\u0000b'), 'name'],
      ['POST', '/api/v1/jobs', flatJob('nul-desc', { description: 'x\u0000' }), 'description'],
      ['POST', '/api/v1/jobs', flatJob('nul-var', { variables: { k: ['ok', 'x\u0000'] } }), 'variables.k[1]'],
      ['POST', '/api/v1/jobs', flatJob('nul-key', { variables: { 'a\u0000': 1 } }), 'variables["a\\u0000"]'],
      ['PUT', '/api/v1/variables/region', { value: 'v\u0000' }, 'value'],
      ['PUT', '/api/v1/variables/region', { value: 'ok', description: '\u0000' }, 'description'],
      ['POST', '/api/v1/jobs', flatJob('\ud800lone'), 'name'],
      ['POST', '/api/v1/jobs', flatJob('lone-tail', { description: 'x\udc00' }), 'description'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await as(method, path, { body });
      assert.equal(res.status, 400, `${path} ${field}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'validation_failed');
      assert.equal(res.body.error.details.problems[0].path, field);
    }
    // (A query string is UTF-8 bytes: a lone surrogate cannot arrive there, only as a JSON \ud800 escape.)
    for (const q of ['search=a%00b', 'search=%00']) {
      const res = await as('GET', `/api/v1/jobs?${q}`);
      assert.equal(res.status, 400, `${q}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.details.problems[0].path, 'querystring.search');
    }
    const viaPath = await as('GET', '/api/v1/jobs/a%00b');
    assert.equal(viaPath.status, 400);
    assert.equal(viaPath.body.error.details.problems[0].path, 'params.id');
  });

  it('JSON nested 100,000 deep is refused before parsing (was a stack overflow), at any content type of JSON', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    for (const path of ['/api/v1/jobs', '/api/v1/variables/deep']) {
      const res = await as(path.includes('variables') ? 'PUT' : 'POST', path, { rawBody: `{"value": ${deep}}` });
      assertError(res, 400, 'validation_failed', 'deeper than 64 levels', 'VECRON_JSON_MAX_DEPTH');
    }
    const ok = '['.repeat(60) + ']'.repeat(60);
    assert.ok([200, 201].includes((await as('PUT', '/api/v1/variables/shallow', { rawBody: `{"value": ${ok}}` })).status));
  });

  it('many keys are refused before parsing; a big body is 413 at the JSON limit (1 MiB)', async () => {
    const many = '{' + Array.from({ length: 25_000 }, (_, i) => `"k${i}":0`).join(',') + '}';
    assert.ok(many.length < 1024 * 1024);
    assertError(
      await as('PUT', '/api/v1/variables/many', { rawBody: `{"value": ${many}}` }),
      400,
      'validation_failed',
      'more than 20000 keys',
      'VECRON_JSON_MAX_KEYS',
    );
    const big = JSON.stringify(flatJob('big', { description: 'x'.repeat(1024 * 1024) }));
    assertError(await as('POST', '/api/v1/jobs', { rawBody: big }), 413, 'payload_too_large', '1048576 bytes', 'VECRON_MAX_JSON_BYTES');
  });

  it('multipart without a boundary (and a truncated multipart body) is 400, not 500', async () => {
    const res = await as('POST', '/api/v1/wasm/modules', { rawBody: '--x\r\n', headers: { 'content-type': 'multipart/form-data' } });
    assertError(res, 400, 'validation_failed', 'multipart');
    const truncated = await as('POST', '/api/v1/wasm/modules', {
      rawBody: '--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx',
      headers: { 'content-type': 'multipart/form-data; boundary=b' },
    });
    assert.ok(truncated.status >= 400 && truncated.status < 500, JSON.stringify(truncated.body));
  });
});

describe('tokens never reach the log', () => {
  it('access_token in the query and the Authorization header are not written, refused or not', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
    const dataDir = mkdtempSync(join(tmpdir(), 'vecron-logs-'));
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', VECRON_DATA_DIR: dataDir, VECRON_ROLES: 'api', VECRON_LOG_LEVEL: 'info' });
    const db = await openTestDb('pglite');
    const logger = pino({ level: 'info', serializers: {} }, sink);
    const app = await startApp(config, { db, logger });
    try {
      const good = (await createToken(db, tokenKeyFor(config), { name: 'log-test', role: 'viewer' })).token;
      const bad = 'vcr_this-is-not-a-token-but-it-looks-like-one';
      await fetch(`${app.url}/api/v1/jobs?access_token=${good}&page=1`);
      await fetch(`${app.url}/api/v1/jobs?access_token=${bad}`);
      await fetch(`${app.url}/api/v1/events?access_token=${good}`, { signal: AbortSignal.timeout(300) })
        .then((r) => r.body?.cancel())
        .catch(() => {});
      await fetch(`${app.url}/api/v1/jobs`, { headers: { authorization: `Bearer ${good}` } });
      await fetch(`${app.url}/api/v1/jobs`, { headers: { authorization: `Bearer ${bad}` } });
      await fetch(`${app.url}/nope?token=${good}&api_key=${bad}`);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await app.close();
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
    const text = lines.join('');
    assert.ok(text.includes('/api/v1/jobs?access_token=***&page=1'), 'the request is logged, its token masked');
    for (const secret of ['this-is-not-a-token', 'vcr_']) assert.ok(!text.includes(secret), `log holds ${secret}`);
  });
});
