/**
 * Idempotent triggers across a cluster (issue 18): three API processes on one PostgreSQL and a
 * worker, many concurrent requests with one Idempotency-Key spread over all three (manual trigger
 * and signed webhook), give exactly one execution per key, which runs its step exactly once; and
 * keys that differ still each get their own execution.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { postgresBinDir } from './postgres-server.ts';
import { Cluster, TOKEN, waitFor, type VecronProcess } from './harness.ts';

const CONCURRENT = 60;

describe('cluster: idempotency keys hold across API processes', {
  skip: !postgresBinDir() && 'no PostgreSQL binaries under /usr/lib/postgresql/<version>/bin',
}, () => {
  const c = new Cluster({ leaseSeconds: 15, pollIntervalMs: 500 });
  let apis: VecronProcess[] = [];
  let jobId = '';
  let secret = '';

  const call = (i: number, path: string, init: { body: string; headers: Record<string, string> }) =>
    fetch(`http://127.0.0.1:${apis[i % apis.length].port}${path}`, { method: 'POST', ...init }).then(async (r) => ({
      status: r.status,
      replayed: r.headers.get('idempotent-replayed') === 'true',
      body: (await r.json()) as any,
    }));
  const trigger = (i: number, key: string, payload: unknown) =>
    call(i, `/api/v1/jobs/${jobId}/trigger`, {
      body: JSON.stringify(payload),
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'idempotency-key': key },
    });
  const hook = (i: number, key: string, body: string) => {
    const ts = String(Math.floor(Date.now() / 1000) - (i % 30)); // signatures differ: each a fresh delivery
    const sig = `sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`;
    return call(i, `/api/v1/webhooks/${jobId}`, {
      body,
      headers: { 'content-type': 'application/json', 'x-vecron-timestamp': ts, 'x-vecron-signature': sig, 'idempotency-key': key },
    });
  };

  before(async () => {
    await c.start();
    apis = await Promise.all([c.spawn('api'), c.spawn('api'), c.spawn('api')]);
    const worker = await c.spawn('worker');
    await c.logged(worker, /vecron started/);
    const r = await c.api('POST', '/api/v1/jobs', {
      name: 'idempotent-cluster',
      webhook: { rate_limit_per_minute: 1000 },
      steps: [{ id: 's1', type: 'http', config: { url: `${c.counter.url}/hit?e={{execution.id}}&s=s1`, method: 'POST' } }],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    jobId = r.body.id;
    secret = (await c.api('POST', `/api/v1/jobs/${jobId}/webhook-secret`)).body.secret;
  });
  after(async () => {
    await c.close();
  });

  it(`${CONCURRENT} concurrent manual triggers with one key over 3 API processes make one execution, run once`, async () => {
    const answers = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => trigger(i, 'order-42', { order: 42 })));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [202], JSON.stringify(answers.find((a) => a.status !== 202)));
    const ids = new Set(answers.map((a) => a.body.execution_id));
    assert.equal(ids.size, 1, `one execution for the key, got ${ids.size}`);
    assert.equal(answers.filter((a) => !a.replayed).length, 1, 'exactly one answer is the first');
    const rows = await c.query(`SELECT id, status FROM executions WHERE job_id = $1 AND trigger_type = 'manual'`, [jobId]);
    assert.equal(rows.length, 1);
    const [id] = ids;
    await waitFor('the execution to succeed', async () => (await c.query(`SELECT 1 FROM executions WHERE id = $1 AND status = 'succeeded'`, [id])).length > 0);
    assert.equal(c.counter.count(id, 's1'), 1, 'its step ran once');
  });

  it(`${CONCURRENT} concurrent webhook deliveries with one key make one execution`, async () => {
    const body = '{"event":"invoice.paid","id":"in_1"}';
    const answers = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => hook(i, 'evt_in_1', body)));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [202], JSON.stringify(answers.find((a) => a.status !== 202)));
    assert.equal(new Set(answers.map((a) => a.body.execution_id)).size, 1);
    assert.equal(answers.filter((a) => !a.replayed).length, 1);
    const rows = await c.query(`SELECT id FROM executions WHERE job_id = $1 AND trigger_type = 'webhook'`, [jobId]);
    assert.equal(rows.length, 1);
  });

  it('different keys, each sent three times at once, make one execution per key', async () => {
    const keys = Array.from({ length: 20 }, (_, k) => `batch-${k}`);
    const answers = await Promise.all(keys.flatMap((key, k) => [0, 1, 2].map((j) => trigger(k * 3 + j, key, { key }))));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [202]);
    const byKey = new Map<string, Set<string>>();
    answers.forEach((a, n) => {
      const key = keys[Math.floor(n / 3)];
      (byKey.get(key) ?? byKey.set(key, new Set()).get(key)!).add(a.body.execution_id);
    });
    for (const [key, set] of byKey) assert.equal(set.size, 1, `${key}: one execution`);
    assert.equal(new Set(answers.map((a) => a.body.execution_id)).size, keys.length);
    const n = await c.query(`SELECT count(*)::int AS n FROM idempotency_keys WHERE job_id = $1 AND key LIKE 'batch-%'`, [jobId]);
    assert.equal(n[0].n, keys.length);
  });

  it('every process is alive and none logged an unhandled error', () => {
    for (const p of c.procs) {
      assert.ok(c.alive(p), `${p.name} is alive`);
      assert.doesNotMatch(c.log(p), /unhandled error/, `${p.name} logged no error`);
    }
  });
});
