/**
 * Webhooks, tried as an anonymous attacker: bounded memory for big bodies, stale and replayed
 * signatures refused (across cluster members), failed signatures throttled per source and per job,
 * audit rows aggregated per source and minute.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, MISSING_ID, assertError, flatJob } from '../api/support.ts';
import { startApp, type App } from '../../src/app.ts';
import { createLogger } from '../../src/logger.ts';

const now = () => Math.floor(Date.now() / 1000);
const sig = (secret: string, body: string, ts: number | null) =>
  'sha256=' +
  createHmac('sha256', secret)
    .update(ts === null ? body : `${ts}.${body}`)
    .digest('hex');

/** A POST with `size` bytes streamed from one reused chunk; resolves with the status (or the error). */
function bigPost(url: string, size: number, opts: { chunked?: boolean; headers?: Record<string, string> } = {}): Promise<number | string> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(opts.headers ?? {}) };
    if (!opts.chunked) headers['content-length'] = String(size);
    const req = request(url, { method: 'POST', headers });
    let sent = 0;
    let done = false;
    const finish = (v: number | string) => {
      if (done) return;
      done = true;
      req.destroy();
      resolve(v);
    };
    req.on('response', (res) => {
      res.resume();
      finish(res.statusCode ?? 0);
    });
    req.on('error', (e) => finish((e as NodeJS.ErrnoException).code ?? e.message));
    const pump = () => {
      while (!done && sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!done) req.end();
    };
    pump();
  });
}

describe('webhooks under attack', () => {
  let t: TestApp;
  let other: App;
  let job: any;
  let secret: string;
  const hook = (jobId: string, body: string, headers: Record<string, string>, app = t.url) =>
    fetch(`${app}/api/v1/webhooks/${jobId}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } }).then(async (r) => ({
      status: r.status,
      body: await r.json().catch(() => null),
      headers: r.headers,
    }));
  const signed = (body: string, ts = now()) => ({ 'x-vecron-timestamp': String(ts), 'x-vecron-signature': sig(secret, body, ts) });

  before(async () => {
    t = await startTestApp('pglite', { ...API_ONLY, VECRON_WEBHOOK_MAX_FAILURES_PER_MINUTE: '3' });
    // A second cluster member on the same database.
    other = await startApp({ ...t.app.config, port: 0 }, { db: t.app.db, logger: createLogger('silent') });
    const res = await t.api('POST', '/api/v1/jobs', {
      body: flatJob('hooked', { webhook: { secret: 'hook-secret-0123456789abcdef', rate_limit_per_minute: 1000 } }),
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    job = res.body;
    secret = 'hook-secret-0123456789abcdef';
  });
  // The failure throttle (3 a minute here) is exercised by its own tests; the others start afresh.
  const reset = () => t.app.db.query('DELETE FROM request_counters');
  beforeEach(async () => {
    if (t) await reset();
  });
  after(async () => {
    await other?.close();
    await t?.close();
  });

  it('8 concurrent 50 MB anonymous posts grow RSS by less than 100 MB', async () => {
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const size = 50 * 1024 * 1024;
    try {
      const statuses = await Promise.all([
        ...[0, 1, 2].map((i) => bigPost(`${t.url}/api/v1/webhooks/${MISSING_ID.slice(0, -1)}${i}`, size)),
        bigPost(`${t.url}/api/v1/webhooks/not-a-uuid`, size, { chunked: true }),
        bigPost(`${t.url}/api/v1/webhooks/${job.id}`, size),
        bigPost(`${t.url}/api/v1/webhooks/${job.id}`, size, { chunked: true }),
        bigPost(`${t.url}/api/v1/webhooks/${job.id}`, size, { headers: signed('x') }),
        bigPost(`${t.url}/api/v1/webhooks/${job.id}`, size, { chunked: true, headers: signed('y') }),
      ]);
      for (const s of statuses.slice(0, 4)) assert.ok(s === 404 || s === 'EPIPE' || s === 'ECONNRESET', `unknown job: ${s}`);
      for (const s of statuses.slice(4)) assert.ok(s === 413 || s === 'EPIPE' || s === 'ECONNRESET', `known job, body over 1 MiB: ${s}`);
    } finally {
      clearInterval(sampler);
    }
    const growthMb = (peak - before) / 1024 / 1024;
    console.log(`webhook flood: RSS ${Math.round(before / 1048576)} MB -> peak ${Math.round(peak / 1048576)} MB (+${growthMb.toFixed(1)} MB)`);
    assert.ok(growthMb < 100, `RSS grew by ${growthMb.toFixed(1)} MB`);
    // And the server still answers.
    assert.equal((await hook(job.id, '{"after":"flood"}', signed('{"after":"flood"}'))).status, 202);
  });

  it('a stale or future timestamp is refused; the body-only signature is refused for a timestamped job', async () => {
    const body = '{"a":1}';
    assertError(await hook(job.id, body, signed(body, now() - 301)), 401, 'unauthorized', 'stale webhook', 'VECRON_WEBHOOK_TOLERANCE_SECONDS');
    assertError(await hook(job.id, body, signed(body, now() + 400)), 401, 'unauthorized', 'stale webhook');
    await reset();
    assertError(await hook(job.id, body, { 'x-vecron-signature': sig(secret, body, null) }), 401, 'unauthorized', 'X-Vecron-Timestamp');
    assertError(
      await hook(job.id, body, { 'x-vecron-signature': sig(secret, body, null), 'x-vecron-timestamp': String(now()) }),
      401,
      'unauthorized',
      'does not match',
    );
    await t.app.db.query('DELETE FROM request_counters');
  });

  it('a replayed request is refused, on the same member and on another member of the cluster, even concurrently', async () => {
    const body = '{"pay":100}';
    const ts0 = now();
    const h = signed(body, ts0);
    assert.equal((await hook(job.id, body, h)).status, 202);
    assertError(await hook(job.id, body, h), 409, 'conflict', 'replayed');
    assertError(await hook(job.id, body, h, other.url!), 409, 'conflict', 'replayed');
    const h2 = signed('{"pay":200}');
    const both = await Promise.all([hook(job.id, '{"pay":200}', h2), hook(job.id, '{"pay":200}', h2, other.url!)]);
    assert.deepEqual(both.map((r) => r.status).sort(), [202, 409]);
    // A new timestamp is a new request.
    assert.equal((await hook(job.id, body, signed(body, ts0 - 5))).status, 202);
  });

  it('the old body-only scheme works only when the job asks for it (and stays replayable)', async () => {
    const legacy = (await t.api('POST', '/api/v1/jobs', { body: flatJob('legacy-hook', { webhook: { secret, signature_scheme: 'body' } }) })).body;
    assert.equal(legacy.webhook.signature_scheme, 'body');
    const body = '{"legacy":true}';
    assert.equal((await hook(legacy.id, body, { 'x-vecron-signature': sig(secret, body, null) })).status, 202);
    assert.equal((await hook(legacy.id, body, { 'x-vecron-signature': sig(secret, body, null) })).status, 202);
    assertError(
      await t.api('POST', '/api/v1/jobs', { body: flatJob('bad-scheme', { webhook: { secret, signature_scheme: 'none' } }) }),
      400,
      'validation_failed',
      'webhook.signature_scheme',
    );
  });

  it('NUL characters and deep nesting in a payload are 400, not 500', async () => {
    for (const [body, why] of [
      ['{"a":"x\\u0000"}', 'NUL'],
      ['['.repeat(100_000) + ']'.repeat(100_000), 'deeper than 64'],
    ]) {
      assertError(await hook(job.id, body, signed(body)), 400, 'validation_failed', why);
    }
    const text = 'a\u0000b';
    assertError(await hook(job.id, text, { ...signed(text), 'content-type': 'text/plain' }), 400, 'validation_failed', 'NUL');
  });

  it('failed signatures are throttled per source address (429 before the body is read), audited as one row per source and minute', async () => {
    await t.app.db.query('DELETE FROM request_counters');
    const body = '{"x":1}';
    const rowsBefore = (await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log WHERE action = 'job.webhook'")).rows[0].n;
    for (let i = 0; i < 3; i++)
      assertError(
        await hook(job.id, body, { 'x-vecron-signature': sig('wrong-secret', body, now()), 'x-vecron-timestamp': String(now()) }),
        401,
        'unauthorized',
      );
    const throttled = await hook(job.id, body, signed(body));
    const err = assertError(throttled, 429, 'rate_limited', 'too many failed webhook signatures');
    assert.ok(Number(throttled.headers.get('retry-after')) >= 1);
    assert.ok(err.details.retry_after_seconds >= 1);
    // Even a 50 MB body is not read while throttled.
    assert.equal(await bigPost(`${t.url}/api/v1/webhooks/${job.id}`, 50 * 1024 * 1024, { chunked: true }), 429);
    for (let i = 0; i < 30; i++) await hook(job.id, body, { 'x-vecron-signature': sig('wrong', body, now()), 'x-vecron-timestamp': String(now()) });
    const rows = (await t.app.db.query<any>("SELECT * FROM audit_log WHERE action = 'job.webhook' AND outcome <> 'success' ORDER BY id")).rows;
    const added = (await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log WHERE action = 'job.webhook'")).rows[0].n - rowsBefore;
    assert.ok(added <= 6, `34 refused calls wrote ${added} audit rows`);
    const throttledRows = rows.filter((r) => r.status_code === 429 && r.ip === '127.0.0.1');
    assert.ok(throttledRows.reduce((n, r) => n + r.details.count, 0) >= 31, 'the count is kept');
    assert.ok(throttledRows.every((r) => r.details.aggregated === true && r.actor_name === 'anonymous'));
  });

  it('failed signatures are throttled per job across sources', async () => {
    await t.app.db.query('DELETE FROM request_counters');
    const body = '{}';
    const from = (addr: string, headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          `${t.url}/api/v1/webhooks/${job.id}`,
          { method: 'POST', localAddress: addr, headers: { 'content-type': 'application/json', ...headers } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const bad = () => ({ 'x-vecron-signature': sig('nope', body, now()), 'x-vecron-timestamp': String(now()) });
    // 5 sources x 3 failures = 15 = 5 x the per-source limit: the job is throttled for every source.
    for (let s = 2; s <= 6; s++) for (let i = 0; i < 3; i++) assert.equal(await from(`127.0.0.${s}`, bad()), 401);
    assert.equal(await from('127.0.0.9', signed(body)), 429);
    await t.app.db.query('DELETE FROM request_counters');
    assert.equal(await from('127.0.0.9', signed(body)), 202);
  });

  it('refused anonymous calls to audited routes write one row per source and minute', async () => {
    const before = (await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log WHERE action = 'job.create'")).rows[0].n;
    for (let i = 0; i < 25; i++) await t.api('POST', '/api/v1/jobs', { token: null, body: flatJob(`anon-${i}`) });
    for (let i = 0; i < 5; i++) await t.api('POST', '/api/v1/jobs', { token: 'vcr_not-a-real-token', body: flatJob(`anon-x-${i}`) });
    const rows = (await t.app.db.query<any>("SELECT * FROM audit_log WHERE action = 'job.create' ORDER BY id")).rows.slice(before);
    assert.ok(rows.length <= 2, `30 refused calls wrote ${rows.length} rows`);
    assert.equal(
      rows.reduce((n, r) => n + r.details.count, 0),
      30,
    );
    assert.ok(rows.every((r) => r.outcome === 'denied' && r.status_code === 401));
  });
});
