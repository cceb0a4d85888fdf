/**
 * The dashboard served by the API: index.html at / and at every client-side route, hashed assets
 * cached for ever, the API's JSON 404 kept under /api, Swagger UI still at /docs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { request } from 'node:http';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY } from '../api/support.ts';
import { ensureDashboardBuilt } from './support.ts';

/** A raw GET (fetch would decode gzip itself and hide the encoding). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, any>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
}

describe('dashboard serving', () => {
  let t: TestApp;
  before(async () => {
    ensureDashboardBuilt();
    t = await startTestApp('pglite', API_ONLY);
  });
  after(async () => t?.close());

  it('answers index.html at / and at client-side routes, with a CSP and no caching', async () => {
    for (const path of ['/', '/jobs', '/jobs/0b1c/edit', '/executions/abc?x=1', '/sign-in', '/modules/echo@1.0.0', '/audit', '/tokens', '/variables']) {
      const r = await get(t.url + path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers['content-type'], /^text\/html/, path);
      assert.equal(r.headers['cache-control'], 'no-cache', path);
      assert.match(r.headers['content-security-policy'], /default-src 'self'/);
      assert.match(r.body.toString(), /<div id="root"><\/div>/, path);
    }
  });

  it('serves hashed assets immutable, gzipped when accepted; a missing asset is a 404', async () => {
    const html = (await get(t.url + '/')).body.toString();
    const js = /src="(\/assets\/index-[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(js, `index.html names its script: ${html}`);
    const plain = await get(t.url + js);
    assert.equal(plain.status, 200);
    assert.match(plain.headers['content-type'], /^text\/javascript/);
    assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(plain.headers['content-encoding'], undefined);
    const gz = await get(t.url + js, { 'accept-encoding': 'gzip, br' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.vary, 'accept-encoding');
    assert.ok(gz.body.length < plain.body.length / 2, `gzip shrinks the bundle (${gz.body.length} of ${plain.body.length})`);
    assert.deepEqual(gunzipSync(gz.body), plain.body);
    const missing = await get(t.url + '/assets/nope-123.js');
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body.toString()).error.code, 'not_found');
  });

  it('keeps the JavaScript of the first page under 300 KB gzipped (the bytes the server sends)', async () => {
    const html = (await get(t.url + '/jobs')).body.toString();
    const scripts = [...html.matchAll(/<(?:script[^>]+src|link[^>]+rel="modulepreload"[^>]+href)="([^"]+\.js)"/g)].map((m) => m[1]);
    assert.ok(scripts.length >= 1, html);
    let total = 0;
    for (const src of new Set(scripts)) {
      const r = await get(t.url + src, { 'accept-encoding': 'gzip' });
      assert.equal(r.status, 200, src);
      total += r.body.length;
    }
    console.log(`[dashboard] first-page JavaScript: ${(total / 1024).toFixed(1)} KB gzipped in ${scripts.length} file(s)`);
    assert.ok(total < 300 * 1024, `first-page JavaScript is ${total} bytes gzipped; the budget is 300 KB`);
  });

  it('keeps the API under /api/v1 (JSON 404 for unknown paths) and Swagger UI at /docs', async () => {
    const unknown = await t.api('GET', '/api/v1/nothing-here');
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body, { error: { code: 'not_found', message: 'no route GET /api/v1/nothing-here' } });
    const jobs = await t.api('GET', '/api/v1/jobs');
    assert.equal(jobs.status, 200);
    assert.ok(Array.isArray(jobs.body.items));
    const docs = await get(t.url + '/docs/');
    assert.equal(docs.status, 200);
    assert.match(docs.body.toString(), /swagger/i);
    const spec = await t.api('GET', '/docs/json');
    assert.equal(spec.status, 200);
    assert.ok(spec.body.paths['/api/v1/schedules/preview'].get, 'the preview endpoint is documented');
    assert.equal(
      Object.keys(spec.body.paths).filter((p) => !p.startsWith('/api/') && !p.startsWith('/docs') && !['/health', '/ready', '/metrics'].includes(p)).length,
      0,
      'the dashboard is not in the API document',
    );
    const notRoute = await t.api('POST', '/jobs');
    assert.equal(notRoute.status, 404, 'only GET answers index.html');
    const notPage = await t.api('GET', '/no/such/page', { token: null });
    assert.deepEqual(
      notPage.body,
      { error: { code: 'not_found', message: 'no route GET /no/such/page' } },
      'paths that are no page of the app keep the JSON 404',
    );
    assert.equal((await t.api('GET', '/api/v1/nothing-here', { token: null })).status, 401, 'unknown API paths stay deny-by-default');
  });
});
