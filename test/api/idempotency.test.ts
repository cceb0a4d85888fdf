/**
 * Idempotency-Key on the manual trigger and the webhook trigger (issue 18): a repeat within the
 * window answers with the first execution, marked as a repeat; another request under the same key
 * is 422; bad keys are 400 with the header's path; expired keys are taken over and pruned.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { forEachDatabase } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, assertError, flatJob } from './support.ts';
import { pruneIdempotencyKeys } from '../../src/triggers/idempotency.ts';

forEachDatabase((kind) => {
  describe(`${kind}: idempotent triggers`, () => {
    let t: TestApp;
    let job: any;
    let other: any;
    let secret: string;

    const executionsOf = async (jobId: string) =>
      (await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM executions WHERE job_id = $1', [jobId])).rows[0].n;
    const trigger = (jobId: string, key: string | null, body?: unknown) =>
      t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body, headers: key === null ? {} : { 'Idempotency-Key': key } });
    const hook = (body: string, key: string | null, query = '') => {
      const ts = String(Math.floor(Date.now() / 1000));
      const sig = 'sha256=' + createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-vecron-timestamp': ts, 'x-vecron-signature': sig };
      if (key !== null) headers['idempotency-key'] = key;
      return t.api('POST', `/api/v1/webhooks/${job.id}${query}`, { token: null, rawBody: body, headers });
    };

    before(async () => {
      t = await startTestApp(kind, API_ONLY);
      job = (await t.api('POST', '/api/v1/jobs', { body: flatJob('idem-job', { webhook: { rate_limit_per_minute: 2 } }) })).body;
      other = (await t.api('POST', '/api/v1/jobs', { body: flatJob('idem-other') })).body;
      secret = (await t.api('POST', `/api/v1/jobs/${job.id}/webhook-secret`)).body.secret;
    });
    after(async () => {
      await t?.close();
    });

    it('a repeated key on the manual trigger answers with the first execution, marked as replayed', async () => {
      const before = await executionsOf(job.id);
      const first = await trigger(job.id, 'order-1001', { amount: 5, currency: 'VND' });
      assert.equal(first.status, 202, JSON.stringify(first.body));
      assert.equal(first.headers.get('idempotent-replayed'), null);
      assert.deepEqual(Object.keys(first.body).sort(), ['execution_id', 'job_id', 'status']);
      // Same body with its keys in another order is the same request.
      const again = await trigger(job.id, 'order-1001', { currency: 'VND', amount: 5 });
      assert.equal(again.status, 202, JSON.stringify(again.body));
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(again.body, first.body);
      assert.equal(await executionsOf(job.id), before + 1);

      // The key is scoped per job: the same key on another job is a new run there.
      const elsewhere = await trigger(other.id, 'order-1001', { amount: 5, currency: 'VND' });
      assert.equal(elsewhere.status, 202);
      assert.equal(elsewhere.headers.get('idempotent-replayed'), null);
      assert.notEqual(elsewhere.body.execution_id, first.body.execution_id);

      // Without a key every call is a new run, as before.
      const a = await trigger(job.id, null);
      const b = await trigger(job.id, null);
      assert.notEqual(a.body.execution_id, b.body.execution_id);

      // The audit entry says which key and that it was a repeat.
      const audit = await t.app.db.query<{ details: any }>(
        `SELECT details FROM audit_log WHERE action = 'job.trigger' AND details->>'idempotency_key' = 'order-1001' ORDER BY id`,
      );
      assert.deepEqual(
        audit.rows.map((r) => r.details.replayed ?? false),
        [false, true, false],
      );
    });

    it('the answer of a repeat carries the execution status of now', async () => {
      const first = await trigger(job.id, 'status-now');
      await t.api('POST', `/api/v1/executions/${first.body.execution_id}/cancel`);
      const again = await trigger(job.id, 'status-now');
      assert.equal(again.status, 202);
      assert.equal(again.body.execution_id, first.body.execution_id);
      assert.equal(again.body.status, 'cancelled');
    });

    it('the same key with a different body is 422 idempotency_key_reused, naming the first execution', async () => {
      const first = await trigger(job.id, 'reuse-me', { n: 1 });
      const before = await executionsOf(job.id);
      const err = assertError(await trigger(job.id, 'reuse-me', { n: 2 }), 422, 'idempotency_key_reused', /reuse-me/, /different request/);
      assert.equal(err.details.path, 'headers.idempotency-key');
      assert.equal(err.details.execution_id, first.body.execution_id);
      assertError(await trigger(job.id, 'reuse-me'), 422, 'idempotency_key_reused');
      assert.equal(await executionsOf(job.id), before);
    });

    it('bad keys are 400 with the header as path, and queue nothing', async () => {
      const before = await executionsOf(job.id);
      for (const [key, msg] of [
        ['', /must not be empty/],
        ['   ', /must not be empty/],
        ['k'.repeat(256), /at most 255 characters, got 256/],
        ['caf\u00e9', /printable ASCII/],
      ] as const) {
        const res = await t.api('POST', `/api/v1/jobs/${job.id}/trigger`, { headers: { 'Idempotency-Key': key } }).catch(() => null);
        // fetch refuses to send non-Latin-1 header values itself; send it as raw bytes instead.
        const r = res ?? (await rawTrigger(t.url, t.adminToken, job.id, key));
        const e = assertError(r, 400, 'validation_failed', msg);
        assert.equal(e.details.problems[0].path, 'headers.idempotency-key');
      }
      // 255 is accepted.
      assert.equal((await trigger(job.id, 'k'.repeat(255))).status, 202);
      assert.equal(await executionsOf(job.id), before + 1);
    });

    it('a key past its window is taken over by a new run, and the pruner deletes expired keys', async () => {
      const first = await trigger(job.id, 'short-lived');
      await t.app.db.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'short-lived'`);
      const second = await trigger(job.id, 'short-lived', { different: true });
      assert.equal(second.status, 202);
      assert.equal(second.headers.get('idempotent-replayed'), null);
      assert.notEqual(second.body.execution_id, first.body.execution_id);

      await trigger(job.id, 'expired-a');
      await trigger(job.id, 'expired-b');
      await trigger(job.id, 'kept');
      await t.app.db.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 minute' WHERE key IN ('expired-a', 'expired-b')`);
      assert.equal(await pruneIdempotencyKeys(t.app.db, 1), 2);
      const left = await t.app.db.query<{ key: string }>(`SELECT key FROM idempotency_keys WHERE key IN ('expired-a', 'expired-b', 'kept')`);
      assert.deepEqual(
        left.rows.map((r) => r.key),
        ['kept'],
      );
    });

    it('deleting the execution ends its key', async () => {
      const first = await trigger(other.id, 'gone');
      await t.app.db.query('DELETE FROM executions WHERE id = $1', [first.body.execution_id]);
      const again = await trigger(other.id, 'gone');
      assert.equal(again.headers.get('idempotent-replayed'), null);
      assert.notEqual(again.body.execution_id, first.body.execution_id);
    });

    it('a webhook redelivered with its key gets the first execution, past the rate limit and the signature replay check', async () => {
      const before = await executionsOf(job.id);
      const body = '{"event":"paid","order":7}';
      const first = await hook(body, 'evt_7');
      assert.equal(first.status, 202, JSON.stringify(first.body));
      // Redeliveries: a fresh signature, and the very same request again (same signature) that
      // without a key is refused as a replay.
      for (let i = 0; i < 3; i++) {
        const again = await hook(body, 'evt_7');
        assert.equal(again.status, 202, JSON.stringify(again.body));
        assert.equal(again.headers.get('idempotent-replayed'), 'true');
        assert.equal(again.body.execution_id, first.body.execution_id);
      }
      assert.equal(await executionsOf(job.id), before + 1);
      // Another body (or query) under the key is refused.
      assertError(await hook('{"event":"paid","order":8}', 'evt_7'), 422, 'idempotency_key_reused');
      assertError(await hook(body, 'evt_7', '?x=1'), 422, 'idempotency_key_reused');
      // The key spaces of the two triggers are apart: the manual trigger does not see webhook keys.
      const manual = await trigger(job.id, 'evt_7', { event: 'paid', order: 7 });
      assert.equal(manual.headers.get('idempotent-replayed'), null);
      // A bad key on a webhook is 400 too.
      assertError(await hook(body, 'x'.repeat(300)), 400, 'validation_failed', /headers\.idempotency-key/);
      // The rate limit (2 per minute) still counts new runs: one more new key passes, the next is 429.
      assert.equal((await hook('{"event":"a"}', 'evt_a')).status, 202);
      assertError(await hook('{"event":"b"}', 'evt_b'), 429, 'rate_limited');
      // ...and the refused call left no key behind: it is not a replay later.
      const keys = await t.app.db.query(`SELECT 1 FROM idempotency_keys WHERE key = 'evt_b'`);
      assert.equal(keys.rows.length, 0);
    });

    it('concurrent requests with one key make one execution', async () => {
      const before = await executionsOf(other.id);
      const answers = await Promise.all(Array.from({ length: 12 }, () => trigger(other.id, 'burst', { n: 1 })));
      assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([202]));
      assert.equal(new Set(answers.map((a) => a.body.execution_id)).size, 1);
      assert.equal(answers.filter((a) => a.headers.get('idempotent-replayed') !== 'true').length, 1);
      assert.equal(await executionsOf(other.id), before + 1);
    });
  });
});

/** A trigger call with a header value fetch will not send (non-ASCII bytes), over a raw socket. */
async function rawTrigger(base: string, token: string, jobId: string, key: string): Promise<{ status: number; body: any }> {
  const { request } = await import('node:http');
  const u = new URL(`${base}/api/v1/jobs/${jobId}/trigger`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'idempotency-key': Buffer.from(key, 'utf8').toString('latin1') },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
