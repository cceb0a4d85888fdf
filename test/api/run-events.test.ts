import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDatabase, type DbKind } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import type { StatusEvent } from '../../src/events/bus.ts';

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: a run publishes its status changes`, () => {
    let t: TestApp;
    let server: TestServer;
    before(async () => {
      t = await startTestApp(kind, { VECRON_POLL_INTERVAL_MS: '100' });
      server = await startHttpServer((r, res) => (r.url === '/fail' ? res.writeHead(400).end() : res.end('ok')));
    });
    after(async () => {
      await t.close();
      await server.close();
    });

    it('running, each step, and the final status reach subscribers in order', async () => {
      const seen: StatusEvent[] = [];
      const unsubscribe = t.app.events.subscribe((e) => seen.push(e));
      await t.app.events.ready();
      const job = await t.api('POST', '/api/v1/jobs', {
        body: {
          name: 'evented',
          max_retries: 0,
          steps: [
            { id: 'a', type: 'http', config: { url: server.url } },
            { id: 'b', type: 'http', config: { url: `${server.url}/fail` } },
          ],
        },
      });
      const id = (await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`)).body.execution_id;
      await waitFor(async () => seen.some((e) => e.execution_id === id && e.kind === 'execution' && e.status === 'failed'), 'final event');
      unsubscribe();
      const mine = seen.filter((e) => e.execution_id === id).map((e) => `${e.kind}:${e.step_id ?? ''}:${e.status}`);
      assert.deepEqual(mine, [
        'execution::queued',
        'execution::running',
        'step:a:running',
        'step:a:succeeded',
        'step:b:running',
        'step:b:failed',
        'execution::failed',
      ]);
      assert.ok(seen.filter((e) => e.execution_id === id).every((e) => e.job_id === job.body.id && typeof e.at === 'string'));

      const ok = await t.api('POST', '/api/v1/jobs', { body: { name: 'evented-ok', steps: [{ id: 'only', type: 'http', config: { url: server.url } }] } });
      const seen2: StatusEvent[] = [];
      const unsub2 = t.app.events.subscribe((e) => seen2.push(e));
      const id2 = (await t.api('POST', `/api/v1/jobs/${ok.body.id}/trigger`)).body.execution_id;
      await waitFor(async () => seen2.some((e) => e.execution_id === id2 && e.kind === 'execution' && e.status === 'succeeded'), 'success event');
      unsub2();
      assert.deepEqual(
        seen2.filter((e) => e.execution_id === id2).map((e) => `${e.kind}:${e.step_id ?? ''}:${e.status}`),
        ['execution::queued', 'execution::running', 'step:only:running', 'step:only:succeeded', 'execution::succeeded'],
      );
    });
  });
});
