import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { forEachDatabase } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, MISSING_ID, UUID_RE, assertError, flatJob } from './support.ts';
import { parseJobDocument } from '../../src/jobs/validate.ts';
import { createJob, getJob, updateJob } from '../../src/jobs/repository.ts';
import { applyWebhookSecret, extractWebhookSecret, loadWebhookSecret } from '../../src/jobs/webhook-secret.ts';
import { loadSecretKey, secretKeyFor } from '../../src/secrets/crypto.ts';

const DOC_SECRET = 'doc-secret-0123456789abcdef';

/** Timestamps of the signatures sign() made, for hook() to send along. */
const timestamps = new Map<string, string>();
let signed = 0;
/** A timestamped signature (the default scheme); each call a different timestamp within the tolerance. */
const sign = (secret: string, body: string) => {
  const ts = String(Math.floor(Date.now() / 1000) - (signed++ % 120));
  const sig = 'sha256=' + createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
  timestamps.set(sig, ts);
  return sig;
};
const withTimestamp = (headers: Record<string, string>): Record<string, string> => {
  const sig = Object.entries(headers).find(([k]) => k.toLowerCase() === 'x-vecron-signature')?.[1];
  const has = Object.keys(headers).some((k) => k.toLowerCase() === 'x-vecron-timestamp');
  return sig && !has && timestamps.has(sig) ? { ...headers, 'x-vecron-timestamp': timestamps.get(sig)! } : headers;
};

forEachDatabase((kind) => {
  describe(`${kind}: webhook triggers`, () => {
    let t: TestApp;
    /** A job with rate_limit_per_minute 3 and a rotated secret. */
    let job: any;
    let secret: string;

    const hook = (jobId: string, body: string, headers: Record<string, string> = {}, query = '') =>
      t.api('POST', `/api/v1/webhooks/${jobId}${query}`, { token: null, rawBody: body, headers: withTimestamp(headers) });

    before(async () => {
      t = await startTestApp(kind, API_ONLY);
      const res = await t.api('POST', '/api/v1/jobs', {
        body: flatJob('webhook-job', { webhook: { secret: DOC_SECRET, rate_limit_per_minute: 3 } }),
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      job = res.body;
      const rotated = await t.api('POST', `/api/v1/jobs/${job.id}/webhook-secret`);
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      secret = rotated.body.secret;
    });
    after(async () => {
      await t?.close();
    });

    it('rotates the secret (operator), returns it once and marks the job', async () => {
      assert.match(secret, /^[0-9a-f]{64}$/);
      const got = await t.api('GET', `/api/v1/jobs/${job.id}`);
      assert.equal(got.body.webhook.has_secret, true);
      assert.equal(got.body.webhook.rate_limit_per_minute, 3);
      assert.ok(!JSON.stringify(got.body).includes(secret));
      const stored = await t.app.db.query<{ encrypted_secret: string }>('SELECT encrypted_secret FROM job_webhook_secrets WHERE job_id = $1', [job.id]);
      assert.match(stored.rows[0].encrypted_secret, /^v1:/);
      assert.ok(!stored.rows[0].encrypted_secret.includes(secret));

      const viewer = await t.token('viewer', 'hook-viewer');
      assertError(await t.api('POST', `/api/v1/jobs/${job.id}/webhook-secret`, { token: viewer }), 403, 'forbidden');
      assertError(await t.api('POST', `/api/v1/jobs/${MISSING_ID}/webhook-secret`), 404, 'not_found');
    });

    it('queues an execution for a correctly signed call, with payload, headers and query', async () => {
      const body = '{ "event" : "push",\n  "ref": "main", "n": [1, 2] }'; // odd spacing: the exact bytes are signed
      const res = await hook(
        job.id,
        body,
        {
          'X-Vecron-Signature': sign(secret, body),
          'X-GitHub-Event': 'push',
          Authorization: 'Bearer should-not-be-kept',
          Cookie: 'session=abc',
        },
        '?source=ci&tag=a&tag=b',
      );
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.deepEqual(Object.keys(res.body).sort(), ['execution_id', 'job_id', 'status']);
      assert.match(res.body.execution_id, UUID_RE);
      assert.equal(res.body.job_id, job.id);
      assert.equal(res.body.status, 'queued');

      const exec = await t.api('GET', `/api/v1/executions/${res.body.execution_id}`);
      assert.equal(exec.status, 200);
      assert.equal(exec.body.trigger_type, 'webhook');
      const trigger = exec.body.trigger;
      assert.equal(trigger.type, 'webhook');
      assert.ok(!Number.isNaN(Date.parse(trigger.time)));
      assert.deepEqual(trigger.payload, { event: 'push', ref: 'main', n: [1, 2] });
      assert.equal(trigger.headers['x-github-event'], 'push');
      assert.equal(trigger.headers['content-type'], 'application/json');
      for (const h of ['authorization', 'cookie', 'x-vecron-signature']) assert.equal(trigger.headers[h], undefined, `${h} dropped`);
      for (const h of Object.keys(trigger.headers)) assert.equal(h, h.toLowerCase());
      assert.deepEqual(trigger.query, { source: 'ci', tag: ['a', 'b'] });
    });

    it('passes a non-JSON body as text and refuses invalid JSON', async () => {
      const other = (await t.api('POST', '/api/v1/jobs', { body: flatJob('webhook-text') })).body;
      const s = (await t.api('POST', `/api/v1/jobs/${other.id}/webhook-secret`)).body.secret;
      const text = 'a=1&b=two';
      const res = await hook(other.id, text, { 'content-type': 'application/x-www-form-urlencoded', 'x-vecron-signature': sign(s, text) });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const exec = await t.api('GET', `/api/v1/executions/${res.body.execution_id}`);
      assert.equal(exec.body.trigger.payload, text);

      const bad = '{"not": json';
      assertError(await hook(other.id, bad, { 'x-vecron-signature': sign(s, bad) }), 400, 'invalid_json', 'not valid JSON');
    });

    it('refuses missing, malformed and wrong signatures with 401, saying which', async () => {
      const body = '{"x":1}';
      const missing = assertError(await hook(job.id, body), 401, 'unauthorized', 'missing signature', 'X-Vecron-Signature');
      const malformed = assertError(await hook(job.id, body, { 'x-vecron-signature': 'md5=abc' }), 401, 'unauthorized', 'sha256=<64 hex digits>');
      const wrong = assertError(
        await hook(job.id, body, { 'x-vecron-signature': sign('another-secret-xxxxxxxx', body) }),
        401,
        'unauthorized',
        'does not match',
      );
      const tampered = assertError(await hook(job.id, '{"x":2}', { 'x-vecron-signature': sign(secret, body) }), 401, 'unauthorized', 'does not match');
      const expectedSig = sign(secret, body);
      const expected = expectedSig.slice(7);
      const tsMismatch = assertError(
        await hook(job.id, body, { 'x-vecron-signature': expectedSig, 'x-vecron-timestamp': String(Number(timestamps.get(expectedSig)) + 1) }),
        401,
        'unauthorized',
        'does not match',
      );
      for (const e of [missing, malformed, wrong, tampered, tsMismatch]) {
        assert.ok(!e.message.includes(expected) && !e.message.includes(secret), 'never reveals the expected value');
      }
      // the API token is no substitute for the signature
      assertError(await hook(job.id, body, { authorization: `Bearer ${t.adminToken}` }), 401, 'unauthorized', 'missing signature');
    });

    it('answers 429 with Retry-After beyond rate_limit_per_minute, counting only accepted calls', async () => {
      // one execution so far (the signed call above); failed calls did not count
      const body = '{}';
      const calls = await Promise.all([1, 2, 3, 4].map(() => hook(job.id, body, { 'x-vecron-signature': sign(secret, body) })));
      const statuses = calls.map((c) => c.status).sort();
      assert.deepEqual(statuses, [202, 202, 429, 429], 'exactly the free slots are taken, even concurrently');
      const res = await hook(job.id, body, { 'x-vecron-signature': sign(secret, body) });
      const err = assertError(res, 429, 'rate_limited', 'rate limit of 3 executions per minute');
      const retryAfter = Number(res.headers.get('retry-after'));
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${res.headers.get('retry-after')}`);
      assert.equal(err.details.retry_after_seconds, retryAfter);
      const n = await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM executions WHERE job_id = $1 AND trigger_type = 'webhook'", [job.id]);
      assert.equal(n.rows[0].n, 3);
      // manual runs do not use the webhook budget
      assert.equal((await t.api('POST', `/api/v1/jobs/${job.id}/trigger`, { body: {} })).status, 202);
    });

    it('404s for unknown jobs, 403s without a secret, 409s for disabled jobs', async () => {
      const body = '{}';
      for (const id of [MISSING_ID, 'nope']) {
        assertError(await hook(id, body, { 'x-vecron-signature': sign(secret, body) }), 404, 'not_found', 'job');
      }
      const plain = (await t.api('POST', '/api/v1/jobs', { body: flatJob('webhook-none') })).body;
      assertError(
        await hook(plain.id, body, { 'x-vecron-signature': sign(secret, body) }),
        403,
        'forbidden',
        'webhook is not enabled for this job: set webhook.secret or rotate a secret',
      );
      const disabled = (await t.api('POST', '/api/v1/jobs', { body: flatJob('webhook-disabled', { enabled: false }) })).body;
      const s = (await t.api('POST', `/api/v1/jobs/${disabled.id}/webhook-secret`)).body.secret;
      assertError(await hook(disabled.id, body, { 'x-vecron-signature': sign(s, body) }), 409, 'conflict', 'job is disabled');
      // the signature is checked before the enabled flag
      assertError(await hook(disabled.id, body, { 'x-vecron-signature': sign(secret, body) }), 401, 'unauthorized');
    });

    it('audits webhook calls and rotations without secrets', async () => {
      const audit = await t.api('GET', '/api/v1/audit?limit=200');
      const hooks = audit.body.items.filter((e: any) => e.action === 'job.webhook');
      const ok = hooks.find((e: any) => e.outcome === 'success' && e.resource_id === job.id);
      assert.ok(ok, 'successful webhook audited');
      assert.equal(ok.resource_type, 'job');
      assert.equal(ok.actor.name, 'anonymous');
      assert.match(ok.details.execution_id, UUID_RE);
      assert.ok(hooks.some((e: any) => e.outcome === 'denied' && e.status_code === 401));
      assert.ok(hooks.some((e: any) => e.outcome === 'failure' && e.status_code === 429));
      assert.ok(hooks.some((e: any) => e.status_code === 404 && e.resource_id === MISSING_ID));
      const rotations = audit.body.items.filter((e: any) => e.action === 'job.webhook_secret.rotate');
      assert.ok(rotations.some((e: any) => e.resource_id === job.id && e.outcome === 'success'));
      const { rows } = await t.app.db.query<{ t: string }>('SELECT row_to_json(a)::text AS t FROM audit_log a');
      for (const r of rows) assert.ok(!r.t.includes(secret), `audit row leaks the secret: ${r.t}`);
    });

    it('takes the secret out of a job document and keeps has_secret accurate', async () => {
      const key = secretKeyFor(t.app.config);
      const db = t.app.db;
      const parsed = parseJobDocument(flatJob('extracted', { webhook: { secret: DOC_SECRET, rate_limit_per_minute: 5 } }));
      const { def, secret: taken } = extractWebhookSecret(parsed);
      assert.equal(taken, DOC_SECRET);
      assert.deepEqual(def.webhook, { rate_limit_per_minute: 5, has_secret: true });
      assert.equal((parsed.webhook as any).secret, DOC_SECRET, 'input not modified');

      const created = await db.transaction(async (tx) => applyWebhookSecret(tx, key, await createJob(tx, def, 'test'), taken));
      assert.deepEqual(created.webhook, { rate_limit_per_minute: 5, has_secret: true });
      assert.equal(await loadWebhookSecret(db, key, created.id), DOC_SECRET);
      const row = await db.query<{ d: string }>('SELECT definition::text AS d FROM jobs WHERE id = $1', [created.id]);
      assert.ok(!row.rows[0].d.includes(DOC_SECRET), 'the stored definition has no secret');

      // a signed call works with the document's secret
      const body = '{"a":1}';
      assert.equal((await hook(created.id, body, { 'x-vecron-signature': sign(DOC_SECRET, body) })).status, 202);

      // an update without a secret keeps the stored one (and the flag)
      const next = extractWebhookSecret(parseJobDocument(flatJob('extracted', { webhook: { rate_limit_per_minute: 7 } })));
      assert.equal(next.secret, null);
      const updated = await db.transaction(async (tx) => applyWebhookSecret(tx, key, await updateJob(tx, created.id, next.def, 'test'), next.secret));
      assert.deepEqual(updated.webhook, { rate_limit_per_minute: 7, has_secret: true });
      assert.equal(await loadWebhookSecret(db, key, created.id), DOC_SECRET);
      assert.deepEqual((await getJob(db, created.id)).webhook, { rate_limit_per_minute: 7, has_secret: true });

      // webhook: null while a secret is stored still says so; a job without either stays null
      const none = extractWebhookSecret(parseJobDocument(flatJob('extracted')));
      const nulled = await db.transaction(async (tx) => applyWebhookSecret(tx, key, await updateJob(tx, created.id, none.def, 'test'), none.secret));
      assert.deepEqual(nulled.webhook, { has_secret: true });
      const plain = await db.transaction(async (tx) => applyWebhookSecret(tx, key, await createJob(tx, parseJobDocument(flatJob('no-hook')), 'test'), null));
      assert.equal(plain.webhook, null);
      assert.equal(await loadWebhookSecret(db, key, plain.id), null);

      // a different key cannot read the stored secret
      const other = loadSecretKey({ secretKey: 'x'.repeat(32), dataDir: t.dataDir });
      await assert.rejects(loadWebhookSecret(db, other, created.id), /the key differs from the one used to encrypt it/);
    });
  });
});
