/**
 * Route validators are built on their route's first request, not before the server listens
 * (src/api/lazy-validators.ts, issue 19's cold start). What must still hold: every route's schema
 * compiles (checked here for the whole API, since a broken one would otherwise only fail on its
 * route's first request), a request is validated exactly as before (400 with the problem's path),
 * and header names stay case-insensitive.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { attachLazyValidators, compileRouteValidators, lazyValidators } from '../../src/api/lazy-validators.ts';
import { API_ONLY } from './support.ts';

describe('lazy route validators', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('pglite', API_ONLY);
  });
  after(async () => {
    await t?.close();
  });

  it("every route's schemas compile (the whole API), and once built a validator is kept", async () => {
    const api = t.app.api;
    assert.ok(api);
    // Only the routes already called have built theirs: every other route's are built here.
    const built = compileRouteValidators(api);
    assert.ok(built > 50, `the API has many validators still unbuilt at first (${built})`);
    assert.equal(compileRouteValidators(api), 0, 'a second pass has nothing left to build');
  });

  it('a bad request is refused as before: 400 naming the problem, on a route not called yet', async () => {
    const r = await t.api('GET', '/api/v1/executions?limit=abc');
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body), /limit/);
  });
});

describe('lazy validators on their own', () => {
  it('a schema that cannot compile fails compileAll, not the start', async () => {
    const v = lazyValidators();
    const app = Fastify({ schemaController: { compilersFactory: { buildValidator: v.buildValidator } } });
    attachLazyValidators(app, v);
    app.post('/x', { schema: { body: { type: 'object', properties: { a: { type: 'no-such-type' } } } } }, async () => ({ ok: true }));
    await app.ready();
    assert.throws(() => compileRouteValidators(app), /no-such-type|type/);
    await app.close();
  });

  it('header names are matched case-insensitively, as with Fastify own compiler', async () => {
    const v = lazyValidators();
    const app = Fastify({ schemaController: { compilersFactory: { buildValidator: v.buildValidator } } });
    app.get(
      '/h',
      { schema: { headers: { type: 'object', properties: { 'X-Tenant': { type: 'string', pattern: '^t[0-9]+$' } }, required: ['X-Tenant'] } } },
      async (req) => ({ tenant: req.headers['x-tenant'] }),
    );
    await app.ready();
    const ok = await app.inject({ method: 'GET', url: '/h', headers: { 'x-tenant': 't42' } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { tenant: 't42' });
    const missing = await app.inject({ method: 'GET', url: '/h' });
    assert.equal(missing.statusCode, 400);
    const bad = await app.inject({ method: 'GET', url: '/h', headers: { 'X-TENANT': 'nope' } });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /x-tenant/i);
    await app.close();
  });
});
