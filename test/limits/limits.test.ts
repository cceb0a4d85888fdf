/**
 * Concurrency keys and rate limits through the API (issue 18): bad values refused with their
 * paths, executions past the limit waiting queued with their reason, and three workers on one
 * database never running more than the limit per key, measured from what the runs themselves
 * report to a loopback server.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { forEachDatabase, type DbKind } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { makeWorker } from '../helpers/jobs.ts';
import { startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import type { Worker } from '../../src/queue/worker.ts';
import { maxOverlap } from '../helpers/overlap.ts';

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: concurrency keys and rate limits`, () => {
    let t: TestApp;
    let server: TestServer;
    const extra: Worker[] = [];
    /** Runs the server is holding (answered on release), by key. */
    const held: { key: string; res: ServerResponse }[] = [];
    let hold = true;
    const runs: { key: string; start: number; end: number }[] = [];

    before(async () => {
      t = await startTestApp(kind, { VECRON_POLL_INTERVAL_MS: '100', VECRON_WORKER_CONCURRENCY: '4' });
      server = await startHttpServer((req, res) => {
        const key = new URL(req.url, 'http://x').searchParams.get('k') ?? '';
        const start = Date.now();
        const answer = () => {
          runs.push({ key, start, end: Date.now() });
          res.end('{}');
        };
        if (hold) held.push({ key, res: { end: () => answer() } as unknown as ServerResponse });
        else setTimeout(answer, 30);
      });
      // Two more workers on the same database, beside the app's own.
      for (let i = 0; i < 2; i++) {
        const w = makeWorker(t.app.db, { concurrency: 4, pollIntervalMs: 100 });
        await w.start();
        extra.push(w);
      }
    });
    after(async () => {
      for (const w of extra) await w.stop(1000);
      for (const h of held) h.res.end();
      await t.close();
      await server.close();
    });

    const job = (extra: Record<string, unknown>) => ({
      name: `limited-${Math.random().toString(36).slice(2, 8)}`,
      steps: [{ id: 'call', type: 'http', config: { url: `${server.url}/run?k={{trigger.payload.customer}}` } }],
      ...extra,
    });

    it('refuses bad limit values with the path of each', async () => {
      const bad = async (fields: Record<string, unknown>) => {
        const r = await t.api('POST', '/api/v1/jobs', { body: job(fields) });
        assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${JSON.stringify(r.body)}`);
        return r.body.error.details.problems.map((p: any) => [p.path, p.message]);
      };
      const paths = async (fields: Record<string, unknown>) => (await bad(fields)).map(([p]: string[]) => p);
      assert.deepEqual(await paths({ concurrency_limit: 0 }), ['concurrency_limit']);
      assert.deepEqual(await paths({ concurrency_limit: 2.5 }), ['concurrency_limit']);
      assert.deepEqual(await paths({ concurrency_key: 'k', concurrency_limit: '2' }), ['concurrency_limit']);
      assert.deepEqual(await paths({ concurrency_key: 'c-{{steps.call.output.x}}', concurrency_limit: 1 }), ['concurrency_key']);
      assert.deepEqual(await paths({ concurrency_key: 'c-{{execution.id}}', concurrency_limit: 1 }), ['concurrency_key']);
      assert.deepEqual(await paths({ concurrency_key: 'c-{{job.version}}', concurrency_limit: 1 }), ['concurrency_key']);
      assert.deepEqual(await paths({ concurrency_key: '   ', concurrency_limit: 1 }), ['concurrency_key']);
      assert.deepEqual(await paths({ concurrency_key: 'x'.repeat(501), concurrency_limit: 1 }), ['concurrency_key']);
      const alone = await bad({ concurrency_key: 'k' });
      assert.deepEqual(alone[0][0], 'concurrency_key');
      assert.match(alone[0][1], /no effect on its own/);
      assert.deepEqual(await paths({ rate_limit: { limit: 5 } }), ['rate_limit']);
      assert.deepEqual(await paths({ rate_limit: { limit: 5, interval_seconds: 0 } }), ['rate_limit.interval_seconds']);
      assert.deepEqual(await paths({ rate_limit: { limit: 5, interval_seconds: 60, per: 'key' } }), ['rate_limit.per']);
      assert.deepEqual(await paths({ rate_limit: { limit: 5, interval_seconds: 60, per: 'tenant' } }), ['rate_limit.per']);
      assert.deepEqual(await paths({ rate_limit: { limit: 5, interval_seconds: 60, burst: 2 } }), ['rate_limit.burst']);
    });

    it('a trigger without what the key needs answers 4xx with the path in the body', async () => {
      const r = await t.api('POST', '/api/v1/jobs', { body: job({ concurrency_key: 'customer-{{trigger.payload.customer}}', concurrency_limit: 1 }) });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.concurrency_limit, 1);
      const refused = await t.api('POST', `/api/v1/jobs/${r.body.id}/trigger`, { body: { other: 1 } });
      assert.ok(refused.status >= 400 && refused.status < 500, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'validation_failed');
      assert.deepEqual(
        refused.body.error.details.problems.map((p: any) => p.path),
        ['customer'],
      );
      await t.api('DELETE', `/api/v1/jobs/${r.body.id}`);
    });

    it('runs at most concurrency_limit per key across three workers; the others wait queued with their reason, and all finish', async () => {
      const created = await t.api('POST', '/api/v1/jobs', { body: job({ concurrency_key: 'customer-{{trigger.payload.customer}}', concurrency_limit: 2 }) });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const ids: string[] = [];
      for (let i = 0; i < 18; i++) {
        const r = await t.api('POST', `/api/v1/jobs/${created.body.id}/trigger`, { body: { customer: ['a', 'b', 'c'][i % 3] } });
        assert.equal(r.status, 202, JSON.stringify(r.body));
        ids.push(r.body.execution_id);
      }
      // Twelve worker slots, three keys of limit 2: six runs start and are held.
      await waitFor(async () => held.length >= 6, 'six held runs');
      const list = await t.api('GET', `/api/v1/jobs/${created.body.id}/executions?status=queued&limit=100`);
      assert.equal(list.status, 200);
      assert.equal(list.body.items.length, 12);
      for (const e of list.body.items) {
        assert.equal(e.waiting?.code, 'concurrency_limit', JSON.stringify(e));
        assert.equal(e.waiting.limit, 2);
        assert.equal(e.waiting.running, 2);
        assert.match(e.waiting.message, /2 of 2 executions with concurrency key 'customer-[abc]' are running/);
        assert.deepEqual(e.limits, { concurrency: { key: e.waiting.key, limit: 2 }, rate: null });
      }
      const one = await t.api('GET', `/api/v1/executions/${list.body.items[0].id}`);
      assert.equal(one.body.waiting.code, 'concurrency_limit');
      assert.equal(held.length, 6, 'no seventh run started while six are held');
      assert.deepEqual(held.map((h) => h.key).sort(), ['a', 'a', 'b', 'b', 'c', 'c']);

      hold = false;
      for (const h of held.splice(0)) h.res.end();
      await waitFor(
        async () => {
          const r = await t.api('GET', `/api/v1/jobs/${created.body.id}/executions?limit=100`);
          return r.body.items.every((e: any) => e.status === 'succeeded');
        },
        'every execution to succeed',
        60_000,
      );
      for (const key of ['a', 'b', 'c']) {
        const mine = runs.filter((r) => r.key === key);
        assert.equal(mine.length, 6);
        assert.ok(maxOverlap(mine) <= 2, `${maxOverlap(mine)} runs of ${key} at once`);
      }
      // The runs were parallel where the limit allows (the limit is not a global lock).
      assert.ok(maxOverlap(runs) > 2, `${maxOverlap(runs)} runs at once over all keys`);
      const done = await t.api('GET', `/api/v1/executions/${ids[0]}`);
      assert.equal(done.body.waiting, null);
    });

    it('a rate limit holds the starts past it queued, with the time the next may start', async () => {
      const created = await t.api('POST', '/api/v1/jobs', { body: job({ rate_limit: { limit: 2, interval_seconds: 3600 } }) });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.deepEqual(created.body.rate_limit, { limit: 2, interval_seconds: 3600, per: 'job' });
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await t.api('POST', `/api/v1/jobs/${created.body.id}/trigger`, { body: { customer: 'r' } })).body.execution_id);
      await waitFor(async () => runs.filter((r) => r.key === 'r').length >= 2, 'two runs');
      const views = await Promise.all(ids.map(async (id) => (await t.api('GET', `/api/v1/executions/${id}`)).body));
      const waiting = views.filter((v) => v.status === 'queued');
      assert.equal(waiting.length, 2);
      for (const v of waiting) {
        assert.equal(v.waiting.code, 'rate_limit');
        assert.equal(v.waiting.starts, 2);
        assert.ok(Date.parse(v.waiting.next_start_at) > Date.now() + 3000 * 1000);
      }
      assert.equal(runs.filter((r) => r.key === 'r').length, 2);
    });
  });
});
